package cluster

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodStatus is what a pod reports about itself: enough to see why it is not
// Ready. It holds no part of the pod's spec (no environment, no mounts).
type PodStatus struct {
	Name       string            `json:"name"`
	Phase      string            `json:"phase"` // Pending, Running, Succeeded, Failed, Unknown
	Node       string            `json:"node,omitempty"`
	Reason     string            `json:"reason,omitempty"` // e.g. Evicted
	Message    string            `json:"message,omitempty"`
	Conditions []PodCondition    `json:"conditions"`
	Containers []ContainerStatus `json:"containers"`
	// InitContainers are the statuses of the pod's init containers, if any.
	InitContainers []ContainerStatus `json:"initContainers,omitempty"`
}

// PodCondition is one of a pod's conditions (PodScheduled, Initialized,
// ContainersReady, Ready, ...).
type PodCondition struct {
	Type           string    `json:"type"`
	Status         string    `json:"status"` // True, False, Unknown
	Reason         string    `json:"reason,omitempty"`
	Message        string    `json:"message,omitempty"`
	LastTransition time.Time `json:"lastTransition,omitzero"`
}

// ContainerStatus is one container of a pod: its state now and, after a
// restart, how its previous instance ended.
type ContainerStatus struct {
	Name         string `json:"name"`
	Image        string `json:"image"`
	ID           string `json:"id,omitempty"` // the runtime's ID; empty before the container is created
	Ready        bool   `json:"ready"`
	RestartCount int32  `json:"restartCount"`
	// State is the container's state now, Last how its previous instance
	// ended (nil when it never restarted).
	State ContainerState  `json:"state"`
	Last  *ContainerState `json:"lastState,omitempty"`
}

// ContainerState is one of the states of a container.
type ContainerState struct {
	State    string    `json:"state"`            // running, waiting, terminated or unknown
	Reason   string    `json:"reason,omitempty"` // e.g. CrashLoopBackOff, ImagePullBackOff, OOMKilled, Error
	Message  string    `json:"message,omitempty"`
	ExitCode int32     `json:"exitCode,omitempty"` // when terminated
	Started  time.Time `json:"startedAt,omitzero"`
	Finished time.Time `json:"finishedAt,omitzero"` // when terminated
}

// HasRun is true when the container runs or has run (terminated): it has
// a current log to read.
func (s ContainerStatus) HasRun() bool {
	return s.State.State == "running" || s.State.State == "terminated"
}

// PodStatuses reads the status of the pods in namespace that match the label
// selector (e.g. "app=account"; "" for every pod), in the order the API
// server returns them.
func (c *Cluster) PodStatuses(ctx context.Context, namespace, selector string) ([]PodStatus, error) {
	pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing pods %s in %s: %w", selector, namespace, err)
	}
	out := make([]PodStatus, 0, len(pods.Items))
	for _, p := range pods.Items {
		ps := PodStatus{
			Name: p.Name, Phase: string(p.Status.Phase), Node: p.Spec.NodeName,
			Reason: p.Status.Reason, Message: p.Status.Message,
			Conditions: []PodCondition{}, Containers: containerStatuses(p.Status.ContainerStatuses),
		}
		for _, cd := range p.Status.Conditions {
			ps.Conditions = append(ps.Conditions, PodCondition{Type: string(cd.Type), Status: string(cd.Status),
				Reason: cd.Reason, Message: cd.Message, LastTransition: cd.LastTransitionTime.Time})
		}
		if len(p.Status.InitContainerStatuses) > 0 {
			ps.InitContainers = containerStatuses(p.Status.InitContainerStatuses)
		}
		out = append(out, ps)
	}
	return out, nil
}

func containerStatuses(list []corev1.ContainerStatus) []ContainerStatus {
	out := make([]ContainerStatus, 0, len(list))
	for _, st := range list {
		cs := ContainerStatus{Name: st.Name, Image: st.Image, ID: st.ContainerID, Ready: st.Ready,
			RestartCount: st.RestartCount, State: containerState(st.State)}
		if st.LastTerminationState.Terminated != nil || st.LastTerminationState.Running != nil || st.LastTerminationState.Waiting != nil {
			last := containerState(st.LastTerminationState)
			cs.Last = &last
		}
		out = append(out, cs)
	}
	return out
}

func containerState(s corev1.ContainerState) ContainerState {
	switch {
	case s.Terminated != nil:
		t := s.Terminated
		return ContainerState{State: "terminated", Reason: t.Reason, Message: t.Message, ExitCode: t.ExitCode,
			Started: t.StartedAt.Time, Finished: t.FinishedAt.Time}
	case s.Running != nil:
		return ContainerState{State: "running", Started: s.Running.StartedAt.Time}
	case s.Waiting != nil:
		return ContainerState{State: "waiting", Reason: s.Waiting.Reason, Message: s.Waiting.Message}
	}
	return ContainerState{State: "unknown"}
}

// CopyLogs writes the log of a container of a pod to w as it is, up to its
// end (it does not follow). With previous it is the log of the container's
// previous instance, the one that ended at its last restart.
func (c *Cluster) CopyLogs(ctx context.Context, namespace, pod, container string, previous bool, w io.Writer) error {
	which := "log"
	if previous {
		which = "previous log"
	}
	rc, err := c.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("reading the %s of container %s of pod %s/%s: %w", which, container, namespace, pod, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("reading the %s of container %s of pod %s/%s: %w", which, container, namespace, pod, err)
	}
	return nil
}
