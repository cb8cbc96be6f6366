package cluster

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/devenv-tool/devenv/internal/log"
)

func TestEvents(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 2, 3, 4, s, 0, time.UTC) }
	ev := func(name, ns string, mod func(*corev1.Event)) *corev1.Event {
		e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1"}, Type: "Normal", Reason: "Pulled", Message: name}
		mod(e)
		return e
	}
	c := &Cluster{Client: fake.NewClientset(
		ev("last", "ns", func(e *corev1.Event) {
			e.LastTimestamp = metav1.NewTime(at(30))
			e.FirstTimestamp = metav1.NewTime(at(1))
			e.Count = 4
		}),
		ev("eventtime", "ns", func(e *corev1.Event) {
			e.EventTime = metav1.NewMicroTime(at(10))
			e.Type = "Warning"
			e.Reason = "BackOff"
		}),
		ev("first", "ns", func(e *corev1.Event) { e.FirstTimestamp = metav1.NewTime(at(20)) }),
		ev("created", "ns", func(e *corev1.Event) {
			e.CreationTimestamp = metav1.NewTime(at(5))
			e.InvolvedObject.Kind = "Deployment"
		}),
		ev("tie-b", "ns", func(e *corev1.Event) { e.LastTimestamp = metav1.NewTime(at(40)); e.InvolvedObject.Name = "web-2" }),
		ev("tie-a", "ns", func(e *corev1.Event) { e.LastTimestamp = metav1.NewTime(at(40)) }),
		ev("elsewhere", "other", func(e *corev1.Event) { e.LastTimestamp = metav1.NewTime(at(0)) }),
	), log: log.Nop()}
	got, err := c.Events(context.Background(), "ns")
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Time: at(5), Type: "Normal", Reason: "Pulled", Object: "Deployment/web-1", Message: "created", Count: 1},
		{Time: at(10), Type: "Warning", Reason: "BackOff", Object: "Pod/web-1", Message: "eventtime", Count: 1},
		{Time: at(20), Type: "Normal", Reason: "Pulled", Object: "Pod/web-1", Message: "first", Count: 1},
		{Time: at(30), Type: "Normal", Reason: "Pulled", Object: "Pod/web-1", Message: "last", Count: 4},
		{Time: at(40), Type: "Normal", Reason: "Pulled", Object: "Pod/web-1", Message: "tie-a", Count: 1},
		{Time: at(40), Type: "Normal", Reason: "Pulled", Object: "Pod/web-2", Message: "tie-b", Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("Events = %+v\nwant %+v", got, want)
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Errorf("event %d at %s, want %s", i, got[i].Time, want[i].Time)
		}
		got[i].Time = want[i].Time
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestEventsError(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	c := &Cluster{Client: cs, log: log.Nop()}
	if _, err := c.Events(context.Background(), "ns"); err == nil {
		t.Error("Events did not report the API server's error")
	}
}

func TestPodStatuses(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pod := func(name, app string, st corev1.PodStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web",
				Env: []corev1.EnvVar{{Name: "PASSWORD", Value: "hunter2"}}}}}, Status: st}
	}
	crashing := pod("web-1", "web", corev1.PodStatus{
		Phase:      corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: started}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "web", Image: "web:1", ContainerID: "containerd://b", RestartCount: 3,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", StartedAt: started, FinishedAt: started}},
		}},
	})
	running := pod("web-2", "web", corev1.PodStatus{
		Phase: corev1.PodRunning,
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", Image: "init:1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Image: "web:1", ContainerID: "containerd://c", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
	})
	other := pod("db-1", "db", corev1.PodStatus{Phase: corev1.PodPending})
	c := &Cluster{Client: fake.NewClientset(crashing, running, other), log: log.Nop()}

	got, err := c.PodStatuses(context.Background(), "ns", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	want := []PodStatus{
		{Name: "web-1", Phase: "Running", Node: "node-1",
			Conditions: []PodCondition{{Type: "Ready", Status: "False", Reason: "ContainersNotReady", LastTransition: started.Time}},
			Containers: []ContainerStatus{{Name: "web", Image: "web:1", ID: "containerd://b", RestartCount: 3,
				State: ContainerState{State: "waiting", Reason: "CrashLoopBackOff", Message: "back-off 40s"},
				Last:  &ContainerState{State: "terminated", Reason: "Error", ExitCode: 2, Started: started.Time, Finished: started.Time}}}},
		{Name: "web-2", Phase: "Running", Node: "node-1", Conditions: []PodCondition{},
			Containers: []ContainerStatus{{Name: "web", Image: "web:1", ID: "containerd://c", Ready: true,
				State: ContainerState{State: "running", Started: started.Time}}},
			InitContainers: []ContainerStatus{{Name: "init", Image: "init:1", State: ContainerState{State: "terminated", Reason: "Completed"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PodStatuses = %+v\nwant %+v", got, want)
	}
	if got[0].Containers[0].HasRun() || !got[1].Containers[0].HasRun() {
		t.Errorf("HasRun: waiting container %v, running container %v", got[0].Containers[0].HasRun(), got[1].Containers[0].HasRun())
	}
	all, err := c.PodStatuses(context.Background(), "ns", "")
	if err != nil || len(all) != 3 {
		t.Errorf("PodStatuses with no selector = %d pods, %v; want 3", len(all), err)
	}
}

func TestCopyLogs(t *testing.T) {
	cs := fake.NewClientset()
	var asked []corev1.PodLogOptions
	cs.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ga, ok := a.(k8stesting.GenericAction)
		if !ok || a.GetSubresource() != "log" {
			return false, nil, nil
		}
		o := ga.GetValue().(*corev1.PodLogOptions)
		asked = append(asked, *o)
		if o.Previous {
			return true, &runtime.Unknown{Raw: []byte("before the restart\npanic: boom\n")}, nil
		}
		return true, &runtime.Unknown{Raw: []byte("now\n")}, nil
	})
	c := &Cluster{Client: cs, log: log.Nop()}
	for _, tc := range []struct {
		previous bool
		want     string
	}{{false, "now\n"}, {true, "before the restart\npanic: boom\n"}} {
		var b bytes.Buffer
		if err := c.CopyLogs(context.Background(), "ns", "web-1", "web", tc.previous, &b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("CopyLogs(previous %v) wrote %q, want %q", tc.previous, b.String(), tc.want)
		}
	}
	want := []corev1.PodLogOptions{{Container: "web"}, {Container: "web", Previous: true}}
	if !slices.EqualFunc(asked, want, func(a, b corev1.PodLogOptions) bool { return reflect.DeepEqual(a, b) }) {
		t.Errorf("log requests %+v, want %+v", asked, want)
	}

	failing := fake.NewClientset()
	failing.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("previous terminated container not found")
	})
	c = &Cluster{Client: failing, log: log.Nop()}
	if err := c.CopyLogs(context.Background(), "ns", "web-1", "web", true, &bytes.Buffer{}); err == nil {
		t.Error("CopyLogs did not report the API server's error")
	}
}
