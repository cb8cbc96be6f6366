package cluster

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devenv-tool/devenv/internal/log"
)

func pod(name string, ready bool, mutate func(*corev1.Pod)) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "cosmos/web:1"}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}},
		},
	}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func waiting(reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", RestartCount: 4,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "msg of " + reason}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}},
		}}
	}
}

func TestExplainPods(t *testing.T) {
	manyLines := ""
	for i := 1; i <= 15; i++ {
		manyLines += "line " + string(rune('a'+i)) + "\n"
	}
	tests := []struct {
		name   string
		pods   []corev1.Pod
		events []corev1.Event
		want   []string
		absent []string
	}{
		{"image pull", []corev1.Pod{pod("p1", false, waiting("ImagePullBackOff"))}, nil,
			[]string{"image cosmos/web:1 is not in the cluster: load it"}, nil},
		{"err image pull", []corev1.Pod{pod("p1", false, waiting("ErrImagePull"))}, nil,
			[]string{"image cosmos/web:1", "ErrImagePull"}, nil},
		{"crash loop with last 10 lines", []corev1.Pod{pod("p1", false, waiting("CrashLoopBackOff"))}, nil,
			[]string{"keeps crashing", "restarts: 4", "exit code 3", "line p", "line g"}, []string{"line f"}},
		{"unschedulable", []corev1.Pod{pod("p1", false, func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient memory."})
		})}, nil, []string{"cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory."}, nil},
		{"readiness probe", []corev1.Pod{pod("p1", false, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		})}, []corev1.Event{{Reason: "Unhealthy", Type: "Warning", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503"}},
			[]string{"readiness probe of container web in pod p1 fails: Readiness probe failed: HTTP probe failed with statuscode: 503"}, nil},
		{"config error", []corev1.Pod{pod("p1", false, waiting("CreateContainerConfigError"))}, nil,
			[]string{"CreateContainerConfigError: msg of CreateContainerConfigError"}, nil},
		{"ready pods are skipped", []corev1.Pod{pod("ok", true, nil)}, nil, nil, []string{"ok"}},
		{"same reason said once", []corev1.Pod{pod("p1", false, waiting("ErrImagePull")), pod("p2", false, waiting("ErrImagePull"))}, nil,
			[]string{"image cosmos/web:1"}, []string{"; image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := func(string) []corev1.Event { return tt.events }
			logs := func(_, _ string, previous bool) string {
				if previous {
					return manyLines
				}
				return ""
			}
			got := explainPods(tt.pods, events, logs)
			if tt.want == nil && got != "" {
				t.Errorf("want no reason, got %q", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reason %q lacks %q", got, w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("reason %q should not contain %q", got, a)
				}
			}
		})
	}
}

func deployment(gen, observed int64, replicas, updated, available, total int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: gen},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated, AvailableReplicas: available, Replicas: total},
	}
}

func TestRolloutDone(t *testing.T) {
	tests := []struct {
		d    *appsv1.Deployment
		done bool
		msg  string
	}{
		{deployment(2, 1, 1, 1, 1, 1), false, "not seen the latest"},
		{deployment(1, 1, 2, 1, 1, 1), false, "1 of 2 replicas updated"},
		{deployment(1, 1, 1, 1, 1, 2), false, "old replicas"},
		{deployment(1, 1, 1, 1, 0, 1), false, "0 of 1 updated replicas available"},
		{deployment(1, 1, 1, 1, 1, 1), true, ""},
	}
	for _, tt := range tests {
		done, msg := rolloutDone(tt.d)
		if done != tt.done || !strings.Contains(msg, tt.msg) {
			t.Errorf("got %v %q, want %v %q", done, msg, tt.done, tt.msg)
		}
	}
}

func TestWaitRollout(t *testing.T) {
	ctx := context.Background()
	readyPod := pod("web-1", true, nil)
	c := &Cluster{Client: fake.NewClientset(deployment(1, 1, 1, 1, 1, 1), &readyPod), log: log.Nop()}
	if err := c.WaitRollout(ctx, "ns", "web", 5*time.Second); err != nil {
		t.Fatalf("ready deployment: %v", err)
	}

	badPod := pod("web-2", false, waiting("ImagePullBackOff"))
	c = &Cluster{Client: fake.NewClientset(deployment(1, 1, 1, 1, 0, 1), &badPod), log: log.Nop()}
	start := time.Now()
	err := c.WaitRollout(ctx, "ns", "web", 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "image cosmos/web:1 is not in the cluster") {
		t.Fatalf("want image reason, got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("timeout not honoured: %s", time.Since(start))
	}

	c = &Cluster{Client: fake.NewClientset(), log: log.Nop()}
	err = c.WaitRollout(ctx, "ns", "web", 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("want missing deployment, got %v", err)
	}
}

func TestRolledOut(t *testing.T) {
	named := func(d *appsv1.Deployment, name string) *appsv1.Deployment {
		d.Name = name
		d.Spec.Selector.MatchLabels = map[string]string{"app": name}
		return d
	}
	podOf := func(name, app string, ready bool, mutate func(*corev1.Pod)) *corev1.Pod {
		p := pod(name, ready, mutate)
		p.Labels = map[string]string{"app": app}
		return &p
	}
	gone := func(p *corev1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }
	c := &Cluster{Client: fake.NewClientset(
		named(deployment(1, 1, 1, 1, 1, 1), "ready"), podOf("ready-1", "ready", true, nil),
		named(deployment(2, 1, 1, 1, 1, 1), "unobserved"), podOf("unobserved-1", "unobserved", true, nil),
		named(deployment(1, 1, 1, 1, 1, 1), "notready"), podOf("notready-1", "notready", false, nil),
		named(deployment(1, 1, 2, 2, 2, 2), "half"), podOf("half-1", "half", true, nil), podOf("half-2", "half", true, gone),
		named(deployment(1, 1, 1, 1, 1, 1), "other"), podOf("other-1", "other", true, nil),
		// A Ready pod of another app does not count for "bare".
		named(deployment(1, 1, 1, 1, 1, 1), "bare"),
	), log: log.Nop()}
	got, err := c.RolledOut(context.Background(), "ns", []string{"ready", "unobserved", "notready", "half", "bare", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"ready": true}
	if !maps.Equal(got, want) {
		t.Errorf("RolledOut = %v, want %v (other is not asked for; the rest are not rolled out)", got, want)
	}
}

func TestNotObserved(t *testing.T) {
	dep := func(name string, gen, observed int64) appsv1.Deployment {
		d := appsv1.Deployment{}
		d.Name, d.Generation, d.Status.ObservedGeneration = name, gen, observed
		return d
	}
	deps := []appsv1.Deployment{
		dep("new", 1, 0),     // applied, not yet seen by the controller manager
		dep("seen", 1, 1),    // taken up
		dep("changed", 3, 2), // changed since the controller manager looked
		dep("other", 1, 0),   // not asked for
	}
	got := notObserved(deps, []string{"seen", "new", "changed", "missing"})
	want := []string{"changed", "missing", "new"}
	if !slices.Equal(got, want) {
		t.Errorf("notObserved = %v, want %v", got, want)
	}
	if got := notObserved(deps, []string{"seen"}); len(got) != 0 {
		t.Errorf("notObserved(seen) = %v, want none", got)
	}
}

func TestWaitControllers(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 1}}
	cs := fake.NewClientset(d)
	c := &Cluster{Client: cs, log: log.Nop()}
	ctx := context.Background()

	// Not taken up within the timeout: the error names the deployment.
	err := c.WaitControllers(ctx, "ns", []string{"web"}, 150*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "deployment web in namespace ns") {
		t.Fatalf("WaitControllers before the controller manager looked: err = %v, want the deployment named", err)
	}

	// Taken up while waiting: it returns.
	go func() {
		time.Sleep(150 * time.Millisecond)
		seen := d.DeepCopy()
		seen.Status.ObservedGeneration = 1
		if _, err := cs.AppsV1().Deployments("ns").UpdateStatus(ctx, seen, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}()
	if err := c.WaitControllers(ctx, "ns", []string{"web"}, 10*time.Second); err != nil {
		t.Fatalf("WaitControllers after the controller manager looked: %v", err)
	}
}

func TestRetryStuckSandboxes(t *testing.T) {
	now := time.Now()
	pod := func(name string, phase corev1.PodPhase, scheduledAgo time.Duration, sandboxUp bool) *corev1.Pod {
		up := corev1.ConditionFalse
		if sandboxUp {
			up = corev1.ConditionTrue
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}},
			Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-scheduledAgo))},
				{Type: corev1.PodReadyToStartContainers, Status: up},
			}},
		}
	}
	froze := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "stuck.1", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "stuck", Namespace: "ns"},
		Reason:         "FailedCreatePodSandBox",
		Message:        `Failed to create pod sandbox: rpc error: ... runc create failed: unable to start container process: error during container init: error setting cgroup config for procHooks process: unable to freeze`,
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	exists := func(c *Cluster, name string) bool {
		_, err := c.Client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
		return err == nil
	}

	// A pod whose sandbox froze is deleted, once; a running pod and a pod
	// scheduled just now are left alone.
	c := &Cluster{Client: fake.NewClientset(pod("stuck", corev1.PodPending, 5*time.Second, false),
		pod("running", corev1.PodRunning, 5*time.Second, true), pod("fresh", corev1.PodPending, 0, false), froze), log: log.Nop()}
	var r sandboxRetries
	c.retryStuckSandboxes(context.Background(), d, &r)
	if exists(c, "stuck") {
		t.Error("the pod whose sandbox froze was not deleted")
	}
	for _, name := range []string{"running", "fresh"} {
		if !exists(c, name) {
			t.Errorf("pod %s was deleted", name)
		}
	}
	if !r.deleted["uid-stuck"] || len(r.deleted) != 1 {
		t.Errorf("deleted = %v, want only uid-stuck", r.deleted)
	}

	// A stuck sandbox without that error (another failure) is left to the
	// kubelet and to the rollout's diagnosis.
	c = &Cluster{Client: fake.NewClientset(pod("slow", corev1.PodPending, 5*time.Second, false)), log: log.Nop()}
	r = sandboxRetries{}
	c.retryStuckSandboxes(context.Background(), d, &r)
	if !exists(c, "slow") {
		t.Error("a pod whose sandbox is only slow was deleted")
	}
	if len(r.checked) != 1 {
		t.Errorf("checked = %v, want the slow pod's events read once", r.checked)
	}
	// Looked at again within the second: nothing is read.
	before := r.checked["uid-slow"]
	c.retryStuckSandboxes(context.Background(), d, &r)
	if r.checked["uid-slow"] != before {
		t.Error("the pods were looked at again within a second")
	}
}
