package cluster

import (
	"context"
	"fmt"

	"github.com/devenv-tool/devenv/internal/log"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// dnsProbePeriod is how often (seconds) the cluster DNS's readiness probe
// looks on a cluster Ensure created.
const dnsProbePeriod = 1

// quickDNS makes the readiness probe of the cluster DNS (kube-system's
// coredns Deployment, as kubeadm makes it) look every second instead of
// every 10: pods resolve names through the kube-dns Service only once a
// DNS pod is Ready, and a kubelet that has just started waits a random
// part of the probe's period before the first look, so on a new cluster
// DNS answered up to 10 s after its pods ran (measured: 5–6 s after the
// services' pods were ready, the last step of a cold up). Ensure calls it
// right after kind returns, before the controller manager has made the
// DNS pods (so no pod is replaced); a Deployment without that container
// or probe is left alone.
func (c *Cluster) quickDNS(ctx context.Context, lg *log.Logger) error {
	d, err := c.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the cluster DNS deployment: %w", err)
	}
	for _, ctr := range d.Spec.Template.Spec.Containers {
		if ctr.Name != "coredns" || ctr.ReadinessProbe == nil || ctr.ReadinessProbe.PeriodSeconds <= dnsProbePeriod {
			continue
		}
		patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"coredns","readinessProbe":{"periodSeconds":%d}}]}}}}`, dnsProbePeriod)
		if _, err := c.Client.AppsV1().Deployments("kube-system").Patch(ctx, "coredns", types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "devenv"}); err != nil {
			return fmt.Errorf("patching the cluster DNS's readiness probe: %w", err)
		}
		lg.Debugf("cluster DNS: readiness probe every %ds (was %ds)", dnsProbePeriod, ctr.ReadinessProbe.PeriodSeconds)
	}
	return nil
}
