package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/internal/ui"
)

// stepClock is an Observer that keeps when each step of an up ended,
// counted from t0: the cold up's timeline.
type stepClock struct {
	t0   time.Time
	mu   sync.Mutex
	ends map[string]time.Duration
}

func newStepClock() *stepClock { return &stepClock{t0: time.Now(), ends: map[string]time.Duration{}} }

func (s *stepClock) Step(name string, start time.Time, d time.Duration, ok, stopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ends[name] = start.Add(d).Sub(s.t0)
}
func (*stepClock) Status(ui.Status)             {}
func (*stepClock) SaveStarted(string, []string) {}
func (*stepClock) SaveEnded()                   {}
func (*stepClock) Applied(ui.Update)            {}
func (*stepClock) Log(string, string)           {}
func (*stepClock) TestResult(ui.Test)           {}
func (s *stepClock) end(name string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ends[name]
}

// coldPhases is where a cold up's time went: when kind returned, how long
// the cluster's controller manager took after that to take up the
// Deployments, how long the services' pods then took to be Ready (the
// slowest), and the cluster DNS after them.
type coldPhases struct {
	kind, controllers, services, dns time.Duration
}

// phases reads the phases of an up of cluster name off its steps.
func (s *stepClock) phases(name string, services []string) coldPhases {
	var p coldPhases
	p.kind = s.end("cluster " + name)
	ctrl := s.end("cluster controllers")
	p.controllers = ctrl - p.kind
	var last time.Duration
	for _, svc := range services {
		last = max(last, s.end(svc+": rollout"))
	}
	p.services = last - ctrl
	if dns := s.end("cluster DNS"); dns > last {
		p.dns = dns - last
	}
	return p
}

func (p coldPhases) String() string {
	return fmt.Sprintf("kind %.1fs, controllers +%.1fs, services Ready +%.1fs, DNS +%.1fs",
		p.kind.Seconds(), p.controllers.Seconds(), p.services.Seconds(), p.dns.Seconds())
}

// medianPhases is the median of each phase over rounds.
func medianPhases(ps []coldPhases) coldPhases {
	pick := func(f func(coldPhases) time.Duration) time.Duration {
		var d []time.Duration
		for _, p := range ps {
			d = append(d, f(p))
		}
		return median(d)
	}
	return coldPhases{
		kind:        pick(func(p coldPhases) time.Duration { return p.kind }),
		controllers: pick(func(p coldPhases) time.Duration { return p.controllers }),
		services:    pick(func(p coldPhases) time.Duration { return p.services }),
		dns:         pick(func(p coldPhases) time.Duration { return p.dns }),
	}
}

// kindWithPod times the second baseline of a cold up, kind with a pod: a
// bare `kind create cluster`, then, at once, the cluster DNS's readiness probe
// set to look every second (as devenv does on a cluster it creates) and a
// one-pod Deployment of the node's own pause image (present on the node:
// no image to load or pull, a container that starts in milliseconds) until
// it is Ready, and the cluster DNS until it is rolled out, as devenv waits
// for it: what a tool on top of kind waits for at least before it can say
// that a service runs and resolves names, with no image or work of its
// own. It returns the whole time, the part after kind returned until
// the pod was Ready, and the part after that until the DNS was, and
// deletes the cluster.
func kindWithPod(ctx context.Context, b *testing.B, docker *client.Client, kind, kubeconfig string) (total, pod, dns time.Duration) {
	name, took, remove := createKind(ctx, b, docker, kind, kubeconfig, "withpod-")
	defer remove()
	returned := time.Now()
	c, err := cluster.Connect(ctx, name, kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	// The pods' sandbox image, always on the node.
	var pause string
	for _, ref := range (&testenv.KindCluster{Name: name}).NodeImages(b) {
		if strings.Contains(ref, "/pause:") {
			pause = ref
			break
		}
	}
	if pause == "" {
		b.Fatalf("node %s-control-plane has no pause image", name)
	}
	probe := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"coredns","readinessProbe":{"periodSeconds":1}}]}}}}`)
	if _, err := c.Client.AppsV1().Deployments("kube-system").Patch(ctx, "coredns", types.StrategicMergePatchType, probe, metav1.PatchOptions{}); err != nil {
		b.Fatal(err)
	}
	labels := map[string]string{"app": "pause"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "pause", Image: pause, ImagePullPolicy: corev1.PullNever,
				}}},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := c.WaitRollout(ctx, "default", "pause", 3*time.Minute); err != nil {
		b.Fatal(err)
	}
	ready := time.Now()
	if err := c.WaitRollout(ctx, "kube-system", "coredns", 3*time.Minute); err != nil {
		b.Fatal(err)
	}
	return took + time.Since(returned), ready.Sub(returned), time.Since(ready)
}

// logEvents logs why, with the events of namespace's pods in time order.
func logEvents(ctx context.Context, b *testing.B, c *cluster.Cluster, namespace, why string) {
	list, err := c.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Logf("%s; its events: %v", why, err)
		return
	}
	evs := list.Items
	slices.SortStableFunc(evs, func(x, y corev1.Event) int { return x.LastTimestamp.Time.Compare(y.LastTimestamp.Time) })
	var sb strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&sb, "\n  %s %s/%s %s (x%d): %s", e.LastTimestamp.Format("15:04:05"), e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Count, e.Message)
	}
	b.Logf("%s; its events:%s", why, sb.String())
}
