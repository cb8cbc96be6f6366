package cluster

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devenv-tool/devenv/internal/log"
)

func TestPodContainers(t *testing.T) {
	mk := func(name, app string, statuses ...corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": app}},
			Status: corev1.PodStatus{ContainerStatuses: statuses}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	c := &Cluster{Client: fake.NewClientset(
		mk("web-1", "web",
			corev1.ContainerStatus{Name: "web", ContainerID: "containerd://a", State: running},
			corev1.ContainerStatus{Name: "sidecar", ContainerID: "containerd://b", State: done}),
		mk("web-2", "web", corev1.ContainerStatus{Name: "web", State: waiting}),
		mk("db-1", "db", corev1.ContainerStatus{Name: "db", ContainerID: "containerd://c", State: running}),
	), log: log.Nop()}
	got, err := c.PodContainers(context.Background(), "ns", "app=web")
	if err != nil {
		t.Fatal(err)
	}
	want := []PodContainer{
		{Pod: "web-1", Container: "web", ID: "containerd://a", Started: true},
		{Pod: "web-1", Container: "sidecar", ID: "containerd://b", Started: true},
		{Pod: "web-2", Container: "web"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("PodContainers = %+v\nwant %+v", got, want)
	}
	if got, err := c.PodContainers(context.Background(), "other", "app=web"); err != nil || len(got) != 0 {
		t.Errorf("PodContainers in another namespace = %v, %v; want none", got, err)
	}
}

func TestStreamLogs(t *testing.T) {
	c := &Cluster{Client: fake.NewClientset(), log: log.Nop()}
	var lines []string
	// The fake clientset answers every log request with the one line "fake logs".
	if err := c.StreamLogs(context.Background(), "ns", "web-1", "web", false, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lines, []string{"fake logs"}) {
		t.Errorf("StreamLogs emitted %q", lines)
	}
}
