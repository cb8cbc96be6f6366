package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ErrNoSwap means a deployment cannot have its images swapped in place (it
// does not exist yet, is paused, is rolling out, or has several live
// ReplicaSets); roll it out instead.
var ErrNoSwap = errors.New("cannot swap images in place")

// swapPoll is how often SwapImages checks the pods.
const swapPoll = 50 * time.Millisecond

// fieldManagerSwap names the patches SwapImages makes.
const fieldManagerSwap = "devenv-swap"

// SwapImages puts new images (container name → image) into deployment
// name's running pods without creating new ones: the kubelet restarts each
// changed container with its new image in the same pod, which skips
// scheduling, the pod sandbox and its network (a second or more on a kind
// node). The Deployment and its ReplicaSet are changed to the same images
// first, with the Deployment paused meanwhile, so the controller adopts the
// change as the current revision instead of rolling out a new one, and a pod
// created later gets the new images too.
//
// It waits, up to timeout, until every pod is Ready on its new images. If
// they are not (the new version crashes, or never becomes Ready), it puts
// the previous images back and returns an error with the reason: the
// previous version keeps serving, as after a failed rollout. Unlike a
// rollout, the pods do not serve while their containers restart.
//
// It returns an error wrapping ErrNoSwap, having changed nothing, when the
// deployment is not in a state where this is safe.
func (c *Cluster) SwapImages(ctx context.Context, namespace, name string, images map[string]string, timeout time.Duration) error {
	d, rs, old, err := c.swappable(ctx, namespace, name, images, false)
	if err != nil || len(old) == 0 {
		return err
	}
	pods, err := c.swapTo(ctx, d, rs, images)
	if err != nil {
		return err
	}
	reason := c.waitSwapped(ctx, namespace, pods, images, timeout)
	if reason == "" {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("deployment/%s: %w (%s)", name, ctx.Err(), reason)
	}
	// Never worse than before: the previous images come back.
	c.log.Infof("deployment/%s: the new version failed (%s); putting the previous images back", name, reason)
	d, rs, _, err = c.swappable(ctx, namespace, name, old, true)
	if err == nil {
		if pods, err = c.swapTo(ctx, d, rs, old); err == nil {
			if r := c.waitSwapped(ctx, namespace, pods, old, timeout); r != "" {
				err = errors.New(r)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("deployment/%s in namespace %s: the new version failed: %s; putting the previous images back failed too: %v", name, namespace, reason, err)
	}
	return fmt.Errorf("deployment/%s in namespace %s: the new version failed: %s (the previous version is serving again)", name, namespace, reason)
}

// swappable checks that deployment name can swap to images and returns it,
// its current ReplicaSet, and the images being replaced (none when the
// deployment already has these images). Going back after a failed swap
// (back) accepts pods that are not available.
func (c *Cluster) swappable(ctx context.Context, namespace, name string, images map[string]string, back bool) (*appsv1.Deployment, *appsv1.ReplicaSet, map[string]string, error) {
	d, err := c.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil, fmt.Errorf("%w: deployment/%s does not exist yet", ErrNoSwap, name)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading deployment/%s: %w", name, err)
	}
	old := map[string]string{}
	have := map[string]bool{}
	for _, ct := range d.Spec.Template.Spec.Containers {
		have[ct.Name] = true
		if img, ok := images[ct.Name]; ok && img != ct.Image {
			old[ct.Name] = ct.Image
		}
	}
	for n := range images {
		if !have[n] {
			return nil, nil, nil, fmt.Errorf("%w: deployment/%s has no container %q", ErrNoSwap, name, n)
		}
	}
	if len(old) == 0 {
		return d, nil, nil, nil
	}
	if d.Spec.Paused {
		return nil, nil, nil, fmt.Errorf("%w: deployment/%s is paused", ErrNoSwap, name)
	}
	if done, msg := rolloutDone(d); !done && !back {
		return nil, nil, nil, fmt.Errorf("%w: deployment/%s is rolling out (%s)", ErrNoSwap, name, msg)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("deployment/%s has a bad selector: %w", name, err)
	}
	list, err := c.Client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listing the ReplicaSets of deployment/%s: %w", name, err)
	}
	var current *appsv1.ReplicaSet
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID {
			continue
		}
		switch {
		case equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template):
			current = rs
		case rs.Status.Replicas > 0 || (rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0):
			return nil, nil, nil, fmt.Errorf("%w: deployment/%s still has pods of ReplicaSet %s", ErrNoSwap, name, rs.Name)
		}
	}
	if current == nil {
		return nil, nil, nil, fmt.Errorf("%w: deployment/%s has no ReplicaSet for its template", ErrNoSwap, name)
	}
	return d, current, old, nil
}

// equalIgnoreHash compares two pod templates ignoring the pod-template-hash
// label, as the deployment controller does to find its current ReplicaSet.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return equality.Semantic.DeepEqual(a, b)
}

// swapTo changes the deployment, its ReplicaSet and its pods to images and
// returns the pods changed, each with the IDs of its containers before.
func (c *Cluster) swapTo(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, images map[string]string) (map[string]map[string]string, error) {
	ns, name := d.Namespace, d.Name
	deps := c.Client.AppsV1().Deployments(ns)
	patch := func(extra map[string]any) []byte {
		var cs []map[string]any
		for _, n := range slices.Sorted(maps.Keys(images)) {
			cs = append(cs, map[string]any{"name": n, "image": images[n]})
		}
		spec := map[string]any{"template": map[string]any{"spec": map[string]any{"containers": cs}}}
		maps.Copy(spec, extra)
		b, _ := json.Marshal(map[string]any{"spec": spec})
		return b
	}
	opts := metav1.PatchOptions{FieldManager: fieldManagerSwap}
	// Paused, the controller neither creates a ReplicaSet for the template
	// it cannot match while the two change, nor rolls anything out.
	if _, err := deps.Patch(ctx, name, types.StrategicMergePatchType, []byte(`{"spec":{"paused":true}}`), opts); err != nil {
		return nil, fmt.Errorf("pausing deployment/%s: %w", name, err)
	}
	unpause := func() {
		_, _ = deps.Patch(context.WithoutCancel(ctx), name, types.StrategicMergePatchType, []byte(`{"spec":{"paused":false}}`), opts)
	}
	if _, err := c.Client.AppsV1().ReplicaSets(ns).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch(nil), opts); err != nil {
		unpause()
		return nil, fmt.Errorf("changing the images of ReplicaSet %s: %w", rs.Name, err)
	}
	if _, err := deps.Patch(ctx, name, types.StrategicMergePatchType, patch(map[string]any{"paused": false}), opts); err != nil {
		unpause() // a rollout of the ReplicaSet's images follows: still a consistent state
		return nil, fmt.Errorf("changing the images of deployment/%s: %w", name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("ReplicaSet %s has a bad selector: %w", rs.Name, err)
	}
	list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of deployment/%s: %w", name, err)
	}
	podPatch, _ := json.Marshal(map[string]any{"spec": json.RawMessage(mustSpec(patch(nil)))})
	swapped := map[string]map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if _, err := c.Client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.StrategicMergePatchType, podPatch, opts); err != nil {
			if apierrors.IsNotFound(err) {
				continue // gone meanwhile; its replacement has the new images
			}
			return nil, fmt.Errorf("changing the images of pod %s: %w", p.Name, err)
		}
		// The containers running before: the ones to see replaced.
		ids := map[string]string{}
		for _, cs := range p.Status.ContainerStatuses {
			ids[cs.Name] = cs.ContainerID
		}
		swapped[p.Name] = ids
	}
	c.log.Debugf("deployment/%s: swapped %v in pods %v", name, images, slices.Sorted(maps.Keys(swapped)))
	return swapped, nil
}

// mustSpec returns the pod spec part ({"containers": [...]}) of a
// {"spec":{"template":{"spec":...}}} patch.
func mustSpec(b []byte) []byte {
	var p struct {
		Spec struct {
			Template struct {
				Spec json.RawMessage `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Spec.Template.Spec
}

// waitSwapped waits until the pods run images and are Ready. It returns ""
// when they are, or the reason they are not: a container that cannot start
// or crashes on its new image ends the wait at once.
func (c *Cluster) waitSwapped(ctx context.Context, namespace string, pods map[string]map[string]string, images map[string]string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	pending := slices.Sorted(maps.Keys(pods))
	last := "not checked yet"
	for {
		var still []string
		for _, name := range pending {
			p, err := c.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue // replaced: its successor comes from the new template
			}
			if err != nil {
				last = err.Error()
				still = append(still, name)
				continue
			}
			done, failed := swapState(p, images, pods[name])
			switch {
			case failed != "":
				logs := c.podLogs(ctx, namespace)
				tail := strings.TrimSpace(logs(name, failed, false))
				if tail == "" {
					tail = strings.TrimSpace(logs(name, failed, true))
				}
				if tail != "" {
					return crashReason(p, failed) + fmt.Sprintf("; last %d log lines:\n%s", logTail, lastLines(tail, logTail))
				}
				return crashReason(p, failed)
			case !done:
				last = fmt.Sprintf("pod %s is not Ready on its new images yet", name)
				still = append(still, name)
			}
		}
		if pending = still; len(pending) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			if p, err := c.Client.CoreV1().Pods(namespace).Get(ctx, pending[0], metav1.GetOptions{}); err == nil {
				if r := explainPod(p, c.podEvents(ctx, namespace), c.podLogs(ctx, namespace)); r != "" {
					last = r
				}
			}
			return fmt.Sprintf("not Ready after %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(swapPoll):
		}
	}
}

// swapState reports whether pod p runs images in new containers (not
// those of before, by ID) and is Ready (done), or names a container that
// cannot start or has exited on its new image.
func swapState(p *corev1.Pod, images map[string]string, before map[string]string) (done bool, failed string) {
	ready := podReady(p)
	seen := 0
	for _, cs := range p.Status.ContainerStatuses {
		want, ok := images[cs.Name]
		if !ok {
			continue
		}
		fresh := cs.ContainerID != "" && cs.ContainerID != before[cs.Name]
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
				"CreateContainerError", "CreateContainerConfigError", "RunContainerError":
				if sameImage(cs.Image, want) {
					return false, cs.Name
				}
			case "CrashLoopBackOff":
				if fresh {
					return false, cs.Name
				}
			}
		}
		if !fresh {
			ready = false
			continue
		}
		if cs.State.Terminated != nil {
			return false, cs.Name // a server that exits, even with 0, is not serving
		}
		if !cs.Ready || cs.State.Running == nil || !sameImage(cs.Image, want) {
			ready = false
		}
		seen++
	}
	return ready && seen == len(images), ""
}

// crashReason says in plain words why container name of pod p failed.
func crashReason(p *corev1.Pod, name string) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != name {
			continue
		}
		t := cs.State.Terminated
		if t == nil {
			t = cs.LastTerminationState.Terminated
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "CrashLoopBackOff" {
			if r := explainPod(p, func(string) []corev1.Event { return nil }, func(string, string, bool) string { return "" }); r != "" {
				return r
			}
			return fmt.Sprintf("container %s of pod %s cannot start: %s: %s", name, p.Name, w.Reason, w.Message)
		}
		if t != nil {
			msg := fmt.Sprintf("container %s of pod %s exited with code %d on its new image", name, p.Name, t.ExitCode)
			if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
				msg += " (" + t.Reason + ")"
			}
			return msg
		}
		return fmt.Sprintf("container %s of pod %s keeps crashing on its new image", name, p.Name)
	}
	return fmt.Sprintf("pod %s has no container %s", p.Name, name)
}

// sameImage compares an image reference in a pod spec with the one the
// container runtime reports, which may be normalised.
func sameImage(status, spec string) bool {
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "docker.io/")
		return strings.TrimPrefix(s, "library/")
	}
	return status == spec || norm(status) == norm(spec)
}

func (c *Cluster) podLogs(ctx context.Context, namespace string) func(pod, container string, previous bool) string {
	return func(pod, container string, previous bool) string {
		n := int64(logTail)
		b, err := c.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
			Container: container, Previous: previous, TailLines: &n,
		}).DoRaw(ctx)
		if err != nil {
			return ""
		}
		return string(b)
	}
}
