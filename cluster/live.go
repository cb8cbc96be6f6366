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
	// ContainerID is the runtime's ID, without its prefix
	// ("containerd://", "cri-o://").
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
		_, id, ok := strings.Cut(cs.ContainerID, "://")
		if !ok || id == "" || !cs.Ready || cs.State.Running == nil || !podReady(&p) || t.Node == "" || t.IP == "" || t.Image == "" {
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

// LiveVia is the way LiveUpdate reaches a container.
type LiveVia string

// The ways of LiveVia.
const (
	// LiveAuto is LiveNode when the pod's node is a kind node container of
	// the Docker engine LiveUpdate is given, LiveExec otherwise.
	LiveAuto LiveVia = ""
	// LiveExec runs the image's supervisor through the Kubernetes API
	// (pods/exec), as the image's USER: any cluster, no node access. Where
	// that user cannot write the files, nothing is changed and the error
	// wraps ErrNoLive, saying which path and why.
	LiveExec LiveVia = "exec"
	// LiveNode runs devenv's own supervisor, copied onto the kind node
	// once, in the container's namespaces (docker exec into the node,
	// nsenter), as root: a kind cluster on the Docker engine given.
	LiveNode LiveVia = "node"
)

// LiveChange is what LiveUpdate does to one container.
type LiveChange struct {
	Target  LiveTarget    // the container (from LiveTargets)
	Files   []byte        // a tar of the files to write, paths relative to /
	Removed []string      // absolute paths to remove first
	Port    int           // the pod's port the new program must accept connections on; 0: none
	Timeout time.Duration // how long the new program may take to be ready
	Via     LiveVia       // how to reach the container; LiveAuto by default
}

// LiveUpdate updates one running container in place: it removes the paths
// in ch.Removed, writes the files of the tar in ch.Files, and has devenv's
// supervisor (the container's first process) restart the container's
// program, then waits up to ch.Timeout until the new program accepts
// connections on ch.Port (0: has run for a second). The container, its pod
// and their readiness stay: with a fast program nothing stops serving for
// more than a moment.
//
// ch.Via chooses how the container is reached: through the Kubernetes API
// (LiveExec; docker may be nil), or from its kind node (LiveNode; docker is
// the engine the node containers run on). Neither runs a file the
// container can write with more rights than the container has. It returns
// an error wrapping ErrNoLive, having changed nothing, when the container
// does not run under the supervisor, or its user may not write a path
// (exec); any other error leaves the new files in place (write the
// previous ones back to undo) and says why, with the container's last log
// lines when the program exited.
func (c *Cluster) LiveUpdate(ctx context.Context, docker *client.Client, ch LiveChange) error {
	t := ch.Target
	via := ch.Via
	if via == LiveAuto {
		via = c.liveVia(ctx, docker, t.Node)
	}
	args := []string{"-ip", t.IP, "-port", strconv.Itoa(ch.Port), "-timeout", ch.Timeout.String(), "--"}
	args = append(args, ch.Removed...)
	var (
		out  string
		code int
		err  error
	)
	switch via {
	case LiveExec:
		out, code, err = c.liveExec(ctx, t, args, ch.Files)
	case LiveNode:
		if docker == nil {
			return fmt.Errorf("updating %s in pod %s from its node: no Docker engine given", t.Container, t.Pod)
		}
		out, code, err = c.liveNode(ctx, docker, t, args, ch.Files)
	default:
		return fmt.Errorf("updating %s in pod %s: unknown way %q (want %q or %q)", t.Container, t.Pod, via, LiveExec, LiveNode)
	}
	if err != nil {
		return fmt.Errorf("updating %s in pod %s: %w", t.Container, t.Pod, err)
	}
	return liveResult(t, code, out, func() string { return c.podLogs(ctx, t.Namespace)(t.Pod, t.Container, false) })
}

// liveResult turns the exit code and output of "supervise update" (or of
// what ran it) into LiveUpdate's error; logs returns the container's log
// when the new version exited.
func liveResult(t LiveTarget, code int, out string, logs func() string) error {
	msg := lastLines(strings.TrimSpace(out), 1)
	switch code {
	case 0:
		return nil
	case 10, 11, 13, 126, 127:
		// 10: not running on its node; 11: not under the supervisor; 13: the
		// user cannot write a path; 126/127: no supervisor to run in the
		// container. Nothing was changed.
		return fmt.Errorf("%w: %s", ErrNoLive, msg)
	case 12:
		err := fmt.Errorf("the new version %s", msg)
		if tail := strings.TrimSpace(logs()); tail != "" {
			err = fmt.Errorf("%w; last %d log lines:\n%s", err, logTail, lastLines(tail, logTail))
		}
		return err
	default:
		return fmt.Errorf("updating %s in pod %s: %s (exit code %d)", t.Container, t.Pod, msg, code)
	}
}
