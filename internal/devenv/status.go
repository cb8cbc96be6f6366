package devenv

import (
	"context"
	"fmt"
	"net"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/kafka"
)

// Report is what Status finds. Its JSON field names are stable: scripts
// and CI read them from `devenv status -o json`.
type Report struct {
	Project   string           `json:"project"`
	Namespace string           `json:"namespace"`
	Ready     bool             `json:"ready"` // every part below is ready
	Cluster   ClusterStatus    `json:"cluster"`
	External  []ExternalStatus `json:"external"`
	Services  []ServiceStatus  `json:"services"`
	Forwards  []ForwardStatus  `json:"forwards"` // the services' ports; not part of ready
}

// ClusterStatus is the kind cluster's state.
type ClusterStatus struct {
	Name    string `json:"name"`
	Context string `json:"context"`
	Ready   bool   `json:"ready"`
	Message string `json:"message,omitempty"`
}

// ExternalStatus is one container outside the cluster (kafka, h2) and the
// Service that wires it in.
type ExternalStatus struct {
	Component   string   `json:"component"`   // "kafka" or "h2"
	Container   string   `json:"container"`   // container name
	Image       string   `json:"image"`       //
	Running     bool     `json:"running"`     //
	IP          string   `json:"ip"`          // address on the kind network
	Port        int      `json:"port"`        // port on that address
	HostAddress string   `json:"hostAddress"` // 127.0.0.1:<port> for host tools (${kafka.host_address})
	Service     string   `json:"service"`     // in-cluster address, <service>:<port>
	Endpoints   []string `json:"endpoints"`   // where the Service's endpoints point (ip:port)
	Current     bool     `json:"current"`     // the endpoints point at the container's current address
	Topics      []string `json:"topics,omitempty"`
	Ready       bool     `json:"ready"`
	Message     string   `json:"message,omitempty"`
}

// ServiceStatus is one service's Deployment.
type ServiceStatus struct {
	Name    string `json:"name"`
	Image   string `json:"image"`
	Desired int32  `json:"desired"`
	Ready   int32  `json:"readyPods"`
	OK      bool   `json:"ready"`
	Message string `json:"message,omitempty"`
}

// Status reports on every part of the project's environment. It creates
// nothing. An error means Status itself could not run (no Docker); parts
// that are missing are reported as not ready.
func Status(ctx context.Context, cfg *config.Config, opts Options) (*Report, error) {
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer docker.Close()
	r := &Report{Project: cfg.Name, Namespace: cfg.Namespace, Cluster: ClusterStatus{Name: cfg.Cluster.Name, Context: "kind-" + cfg.Cluster.Name}}

	c, err := cluster.Connect(ctx, cfg.Cluster.Name, opts.Kubeconfig)
	if err == nil {
		if _, err = c.Client.Discovery().ServerVersion(); err == nil {
			r.Cluster.Ready = true
		}
	}
	if err != nil {
		r.Cluster.Message = err.Error()
		c = nil
	}

	if k := cfg.Kafka; k != nil {
		es := ExternalStatus{Component: "kafka", Service: k.Address(), Port: k.Port}
		ep, found, err := kafka.Find(ctx, docker, cfg.Name)
		switch {
		case err != nil:
			es.Message = err.Error()
		case !found:
			es.Message = "no broker container: run devenv up"
		default:
			es.Container, es.Image, es.IP, es.HostAddress = ep.Name, ep.Image, ep.IP, ep.HostAddress
			es.Running = ep.IP != ""
			if ep.Port != 0 {
				es.Port = ep.Port
			}
			if es.Running {
				es.Topics, err = kafka.Topics(ctx, ep.HostAddress)
				if err != nil {
					es.Message = "broker does not answer: " + err.Error()
				}
			} else {
				es.Message = "container is not running"
			}
		}
		if c != nil {
			es.Endpoints = sliceEndpoints(ctx, c, cfg.Namespace, k.Service)
		}
		want := net.JoinHostPort(es.IP, strconv.Itoa(es.Port))
		es.Current = es.IP != "" && len(es.Endpoints) == 1 && es.Endpoints[0] == want
		if es.Message == "" && !es.Current {
			es.Message = fmt.Sprintf("endpoints %v do not point at %s: run devenv up", es.Endpoints, want)
		}
		es.Ready = es.Running && es.Current && es.Message == ""
		r.External = append(r.External, es)
	}
	if h := cfg.H2; h.Mode == config.H2Server {
		es := ExternalStatus{Component: "h2", Service: net.JoinHostPort(h.Service, strconv.Itoa(h.Port)), Port: h.Port}
		list, err := ownedContainers(ctx, docker, cfg.Name, "h2")
		if err != nil {
			es.Message = err.Error()
		} else if len(list) == 0 {
			es.Message = "no H2 container: run devenv up"
		} else {
			ct := list[0]
			es.Container, es.Image = trimSlash(ct.Names), ct.Image
			if ep, found, err := h2.Find(ctx, docker, cfg.Name); err == nil && found {
				es.IP, es.HostAddress = ep.IP, ep.HostAddress
			}
			es.Running = ct.State == "running"
		}
		if c != nil {
			es.Endpoints = sliceEndpoints(ctx, c, cfg.Namespace, h.Service)
		}
		want := net.JoinHostPort(es.IP, strconv.Itoa(es.Port))
		es.Current = es.IP != "" && len(es.Endpoints) == 1 && es.Endpoints[0] == want
		es.Ready = es.Running && es.Current
		r.External = append(r.External, es)
	}

	for _, s := range cfg.Services {
		ss := ServiceStatus{Name: s.Name}
		if c == nil {
			ss.Message = "no cluster"
			r.Services = append(r.Services, ss)
			continue
		}
		d, err := c.Client.AppsV1().Deployments(cfg.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			ss.Message = "not deployed: run devenv up"
		case err != nil:
			ss.Message = err.Error()
		default:
			if len(d.Spec.Template.Spec.Containers) > 0 {
				ss.Image = d.Spec.Template.Spec.Containers[0].Image
			}
			if d.Spec.Replicas != nil {
				ss.Desired = *d.Spec.Replicas
			}
			ss.Ready = d.Status.ReadyReplicas
			ss.OK = ss.Ready >= ss.Desired && d.Status.UpdatedReplicas >= ss.Desired && d.Status.ObservedGeneration >= d.Generation
			if !ss.OK {
				ss.Message = fmt.Sprintf("%d of %d pods ready", ss.Ready, ss.Desired)
			}
		}
		r.Services = append(r.Services, ss)
	}

	r.Forwards = forwardStatus(cfg)
	r.Ready = r.Cluster.Ready
	for _, e := range r.External {
		r.Ready = r.Ready && e.Ready
	}
	for _, s := range r.Services {
		r.Ready = r.Ready && s.OK
	}
	return r, nil
}

func trimSlash(names []string) string {
	if len(names) == 0 {
		return ""
	}
	n := names[0]
	if len(n) > 0 && n[0] == '/' {
		return n[1:]
	}
	return n
}

// sliceEndpoints lists ip:port of the EndpointSlices of a Service.
func sliceEndpoints(ctx context.Context, c *cluster.Cluster, ns, svc string) []string {
	list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			for _, a := range ep.Addresses {
				for _, p := range s.Ports {
					if p.Port != nil {
						out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
					}
				}
			}
		}
	}
	return out
}
