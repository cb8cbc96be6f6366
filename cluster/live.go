package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// ErrNoLive means a running container cannot be updated in place (it does
// not run under devenv's supervisor, is not running, or its pod is not
// Ready); replace it instead. Nothing was changed.
var ErrNoLive = errors.New("cannot update in place")

// LiveTarget is one running container that LiveUpdate can update.
type LiveTarget struct {
	Namespace, Pod, Container string
	// Node is the kind node (and its container) the pod runs on.
	Node string
	// ContainerID is the runtime's ID, without the "containerd://" prefix.
	ContainerID string
	// IP is the pod's address; Image the container's image in the pod spec.
	IP, Image string
}

// LiveTargets returns container of each pod of deployment name. It returns
// an error wrapping ErrNoLive unless every pod the Deployment wants is there,
// Ready, and not being replaced.
func (c *Cluster) LiveTargets(ctx context.Context, namespace, name, container string) ([]LiveTarget, error) {
	d, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoLive, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	var out []LiveTarget
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			return nil, fmt.Errorf("%w: pod %s is being deleted", ErrNoLive, p.Name)
		}
		t := LiveTarget{Namespace: namespace, Pod: p.Name, Container: container, Node: p.Spec.NodeName, IP: p.Status.PodIP}
		for _, ct := range p.Spec.Containers {
			if ct.Name == container {
				t.Image = ct.Image
			}
		}
		var cs *corev1.ContainerStatus
		for i := range p.Status.ContainerStatuses {
			if p.Status.ContainerStatuses[i].Name == container {
				cs = &p.Status.ContainerStatuses[i]
			}
		}
		if cs == nil {
			return nil, fmt.Errorf("%w: pod %s has no container %s", ErrNoLive, p.Name, container)
		}
		id, ok := strings.CutPrefix(cs.ContainerID, "containerd://")
		if !ok || !cs.Ready || cs.State.Running == nil || !podReady(&p) || t.Node == "" || t.IP == "" || t.Image == "" {
			return nil, fmt.Errorf("%w: container %s of pod %s is not running and Ready", ErrNoLive, container, p.Name)
		}
		t.ContainerID = id
		out = append(out, t)
	}
	if len(out) == 0 || int32(len(out)) != want {
		return nil, fmt.Errorf("%w: %d pods of %s run, %d wanted", ErrNoLive, len(out), name, want)
	}
	return out, nil
}

// LiveChange is what LiveUpdate does to one container.
type LiveChange struct {
	Target  LiveTarget    // the container (from LiveTargets)
	Files   []byte        // a tar of the files to write, paths relative to /
	Removed []string      // absolute paths to remove first
	Port    int           // the pod's port the new program must accept connections on; 0: none
	Timeout time.Duration // how long the new program may take to be ready
}

// LiveUpdate updates one running container in place: it removes the paths
// in ch.Removed, writes the files of the tar in ch.Files, and has devenv's
// supervisor (the container's first process) restart the container's
// program, then waits up to ch.Timeout until the new program accepts
// connections on ch.Port (0: has run for a second). docker is the engine the
// node containers run on. The
// container, its pod and their readiness stay: with a fast program nothing
// stops serving for more than a moment.
//
// The work happens in the container's namespaces on its node (nsenter),
// done by the supervisor binary the image holds. It returns an error
// wrapping ErrNoLive, having changed nothing, when the container does not
// run under the supervisor; any other error leaves the new files in place
// (write the previous ones back to undo) and says why, with the
// container's last log lines when the program exited.
func (c *Cluster) LiveUpdate(ctx context.Context, docker *client.Client, ch LiveChange) error {
	t, files, removed, port, timeout := ch.Target, ch.Files, ch.Removed, ch.Port, ch.Timeout
	// containerd's runc shim keeps the task's first PID here.
	script := `p=$(cat /run/containerd/io.containerd.runtime.v2.task/k8s.io/"$1"/init.pid 2>/dev/null) ||
p=$(crictl inspect -o go-template --template '{{.info.pid}}' "$1" 2>/dev/null) || { echo "container $1 is not running on this node"; exit 10; }
shift
exec nsenter -t "$p" -m -u -i -n -p -r -w /.devenv/supervise update "$@"`
	cmd := []string{"sh", "-c", script, "sh", t.ContainerID,
		"-ip", t.IP, "-port", strconv.Itoa(port), "-timeout", timeout.String(), "--"}
	cmd = append(cmd, removed...)
	out, code, err := dockerx.Exec(ctx, docker, t.Node, cmd, files, nil)
	if err != nil {
		return fmt.Errorf("updating %s in pod %s: %w", t.Container, t.Pod, err)
	}
	msg := lastLines(strings.TrimSpace(out), 1)
	switch code {
	case 0:
		return nil
	case 10, 11, 126, 127:
		// 126/127: nsenter found no supervisor to run in the container.
		return fmt.Errorf("%w: %s", ErrNoLive, msg)
	case 12:
		err := fmt.Errorf("the new version %s", msg)
		if tail := strings.TrimSpace(c.podLogs(ctx, t.Namespace)(t.Pod, t.Container, false)); tail != "" {
			err = fmt.Errorf("%w; last %d log lines:\n%s", err, logTail, lastLines(tail, logTail))
		}
		return err
	default:
		return fmt.Errorf("updating %s in pod %s: %s (exit code %d)", t.Container, t.Pod, msg, code)
	}
}
