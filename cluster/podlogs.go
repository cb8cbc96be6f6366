package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodContainer is one container of a pod, as devenv logs follows them.
type PodContainer struct {
	Pod       string // pod name
	Container string // container name in the pod
	ID        string // the container runtime's ID; a restarted container gets a new one
	// Started is true when the container runs or has run (terminated): it
	// has logs to read.
	Started bool
}

// PodContainers lists the containers of the pods in namespace that match
// the label selector (e.g. "app=account"), pod by pod in the order the API
// server returns them. A container not created yet has no ID.
func (c *Cluster) PodContainers(ctx context.Context, namespace, selector string) ([]PodContainer, error) {
	pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing pods %s in %s: %w", selector, namespace, err)
	}
	var out []PodContainer
	for _, p := range pods.Items {
		for _, st := range p.Status.ContainerStatuses {
			out = append(out, PodContainer{Pod: p.Name, Container: st.Name, ID: st.ContainerID,
				Started: st.State.Running != nil || st.State.Terminated != nil})
		}
	}
	return out, nil
}

// StreamLogs reads the log of a container of a pod and calls emit with each
// line (without its newline). With follow it keeps reading until the
// container stops or ctx ends; a cancelled ctx is not an error.
func (c *Cluster) StreamLogs(ctx context.Context, namespace, pod, container string, follow bool, emit func(line string)) error {
	rc, err := c.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: follow}).Stream(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		emit(sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
