package cluster

import (
	"context"
	"fmt"
	"net"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The read-only questions about what runs in the cluster that devenv status
// (and the tests) ask. They create and change nothing.

// Ping checks that the API server answers, by asking for its version.
func (c *Cluster) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rc := c.Client.Discovery().RESTClient(); rc != nil {
		// Bounded by ctx (ServerVersion is not).
		return rc.Get().AbsPath("/version").Do(ctx).Error()
	}
	_, err := c.Client.Discovery().ServerVersion()
	return err
}

// DeploymentStatus is what a Deployment reports about its rollout.
type DeploymentStatus struct {
	Image     string // the image of the pod template's first container
	Desired   int32  // spec.replicas (0 when unset)
	ReadyPods int32  // status.readyReplicas
	// Ready is true when at least Desired pods are ready and updated and the
	// Deployment's latest generation has been observed.
	Ready bool
}

// DeploymentStatus reads the Deployment name in namespace. found is false
// (and err nil) when there is no such Deployment.
func (c *Cluster) DeploymentStatus(ctx context.Context, namespace, name string) (st DeploymentStatus, found bool, err error) {
	d, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return DeploymentStatus{}, false, nil
	}
	if err != nil {
		return DeploymentStatus{}, false, err
	}
	if len(d.Spec.Template.Spec.Containers) > 0 {
		st.Image = d.Spec.Template.Spec.Containers[0].Image
	}
	if d.Spec.Replicas != nil {
		st.Desired = *d.Spec.Replicas
	}
	st.ReadyPods = d.Status.ReadyReplicas
	st.Ready = st.ReadyPods >= st.Desired && d.Status.UpdatedReplicas >= st.Desired && d.Status.ObservedGeneration >= d.Generation
	return st, true, nil
}

// EndpointAddresses lists, as ip:port, where the EndpointSlices of the
// Service svc in namespace point: every address of every endpoint with
// every port of its slice. A Service without slices gives none.
func (c *Cluster) EndpointAddresses(ctx context.Context, namespace, svc string) ([]string, error) {
	list, err := c.Client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		return nil, fmt.Errorf("listing the endpoint slices of service %s/%s: %w", namespace, svc, err)
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
	return out, nil
}
