package devenv

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/moby/moby/client"

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
	r := &Report{Project: cfg.Name, Namespace: cfg.Namespace}
	var c *cluster.Cluster // nil when the cluster does not answer
	r.Cluster, c = clusterStatus(ctx, cfg, opts)
	if cfg.Kafka != nil {
		r.External = append(r.External, kafkaStatus(ctx, docker, c, cfg))
	}
	if cfg.H2.Mode == config.H2Server {
		r.External = append(r.External, h2Status(ctx, docker, c, cfg))
	}
	for _, s := range cfg.Services {
		r.Services = append(r.Services, serviceStatus(ctx, c, cfg.Namespace, s.Name))
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

// clusterStatus connects to the cluster; the connection is nil when the
// cluster is missing or its API server does not answer.
func clusterStatus(ctx context.Context, cfg *config.Config, opts Options) (ClusterStatus, *cluster.Cluster) {
	st := ClusterStatus{Name: clusterName(cfg), Context: clusterContext(cfg)}
	c, err := connectCluster(ctx, cfg, opts)
	if err == nil {
		err = c.Ping(ctx)
	}
	if err != nil {
		st.Message = err.Error()
		return st, nil
	}
	st.Ready = true
	return st, c
}

// kafkaStatus reports on the broker container, its topics and the endpoints
// of its Service (c may be nil).
func kafkaStatus(ctx context.Context, docker *client.Client, c *cluster.Cluster, cfg *config.Config) ExternalStatus {
	k := cfg.Kafka
	es := ExternalStatus{Component: "kafka", Service: k.Address(), Port: k.Port}
	if k.External != "" {
		return externalStatus(ctx, c, cfg.Namespace, k.Service, k.External, es, func(ctx context.Context, es *ExternalStatus) error {
			var err error
			es.Topics, err = kafka.Topics(ctx, k.External)
			return err
		})
	}
	ep, found, err := kafka.Find(ctx, docker, projectKey(cfg))
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
	want := endpointsFor(ctx, c, cfg.Namespace, k.Service, &es)
	if es.Message == "" && !es.Current {
		es.Message = fmt.Sprintf("endpoints %v do not point at %s: run devenv up", es.Endpoints, want)
	}
	es.Ready = es.Running && es.Current && es.Message == ""
	return es
}

// h2Status reports on the H2 server container and the endpoints of its
// Service (c may be nil).
func h2Status(ctx context.Context, docker *client.Client, c *cluster.Cluster, cfg *config.Config) ExternalStatus {
	h := cfg.H2
	es := ExternalStatus{Component: "h2", Service: net.JoinHostPort(h.Service, strconv.Itoa(h.Port)), Port: h.Port}
	if h.External != "" {
		return externalStatus(ctx, c, cfg.Namespace, h.Service, h.External, es, func(ctx context.Context, _ *ExternalStatus) error {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.External)
			if err == nil {
				conn.Close()
			}
			return err
		})
	}
	ep, found, err := h2.Find(ctx, docker, projectKey(cfg))
	switch {
	case err != nil:
		es.Message = err.Error()
	case !found:
		es.Message = "no H2 container: run devenv up"
	default:
		es.Container, es.Image, es.IP, es.HostAddress = ep.Name, ep.Image, ep.IP, ep.HostAddress
		es.Running = ep.Running
	}
	endpointsFor(ctx, c, cfg.Namespace, h.Service, &es)
	es.Ready = es.Running && es.Current
	return es
}

// endpointsFor fills es.Endpoints from the Service svc (none when c is nil or
// the cluster does not answer) and es.Current, and returns the address the
// endpoints should point at.
func endpointsFor(ctx context.Context, c *cluster.Cluster, ns, svc string, es *ExternalStatus) (want string) {
	if c != nil {
		es.Endpoints, _ = c.EndpointAddresses(ctx, ns, svc)
	}
	want = net.JoinHostPort(es.IP, strconv.Itoa(es.Port))
	es.Current = es.IP != "" && len(es.Endpoints) == 1 && es.Endpoints[0] == want
	return want
}

// serviceStatus reports on a service's Deployment (c may be nil).
func serviceStatus(ctx context.Context, c *cluster.Cluster, ns, name string) ServiceStatus {
	ss := ServiceStatus{Name: name}
	if c == nil {
		ss.Message = "no cluster"
		return ss
	}
	d, found, err := c.DeploymentStatus(ctx, ns, name)
	switch {
	case err != nil:
		ss.Message = err.Error()
	case !found:
		ss.Message = "not deployed: run devenv up"
	default:
		ss.Image, ss.Desired, ss.Ready, ss.OK = d.Image, d.Desired, d.ReadyPods, d.Ready
		if !ss.OK {
			ss.Message = fmt.Sprintf("%d of %d pods ready", ss.Ready, ss.Desired)
		}
	}
	return ss
}

// externalStatus reports on a broker or server devenv does not run
// (kafka.external, h2.external) at addr: whether this machine reaches it
// (probe, which may fill in what it learns) and, for an IP, whether the Service's endpoints point at it (a
// DNS name gets an ExternalName Service, with no endpoints).
func externalStatus(ctx context.Context, c *cluster.Cluster, ns, svc, addr string, es ExternalStatus, probe func(context.Context, *ExternalStatus) error) ExternalStatus {
	host, port, _ := net.SplitHostPort(addr)
	es.HostAddress = addr
	if p, err := strconv.Atoi(port); err == nil {
		es.Port = p // the endpoints' port
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := probe(pctx, &es); err != nil {
		es.Message = fmt.Sprintf("%s (run by someone else) does not answer from this machine: %v", addr, err)
	} else {
		es.Running = true
	}
	if ip := net.ParseIP(host); ip != nil {
		es.IP = host
		want := endpointsFor(ctx, c, ns, svc, &es)
		if es.Message == "" && !es.Current {
			es.Message = fmt.Sprintf("endpoints %v do not point at %s: run devenv up", es.Endpoints, want)
		}
	} else {
		es.Current = c != nil
	}
	es.Ready = es.Running && es.Current && es.Message == ""
	return es
}
