package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// logTail is how many log lines a crash report shows.
const logTail = 10

// WaitRollout waits until the deployment's latest generation is observed and
// all its replicas are updated, available and Ready. On timeout it returns a
// plain-words reason taken from the pods: an image that is not in the
// cluster, a crash loop (with the last log lines), an unschedulable pod (with
// the scheduler's message) or a failing readiness probe (with the event).
func (c *Cluster) WaitRollout(ctx context.Context, namespace, name string, timeout time.Duration) error {
	c.log.Infof("waiting up to %s for deployment/%s", timeout, name)
	deadline := time.Now().Add(timeout)
	var d *appsv1.Deployment
	last := "not checked yet"
	var stuck sandboxRetries
	for {
		var err error
		d, err = c.Client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			d, last = nil, fmt.Sprintf("deployment %s/%s does not exist", namespace, name)
		case err != nil:
			last = err.Error()
		default:
			done, msg := rolloutDone(d)
			last = msg
			if done {
				ready, msg, err := c.podsReady(ctx, d)
				if err != nil {
					last = err.Error()
				} else if ready {
					c.log.Debugf("deployment/%s is rolled out", name)
					return nil
				} else {
					last = msg
				}
			}
			c.retryStuckSandboxes(ctx, d, &stuck)
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for deployment/%s: %w (last state: %s)", name, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
	if d != nil {
		if reason := c.diagnose(ctx, d); reason != "" {
			last = reason
		}
	}
	return fmt.Errorf("deployment/%s in namespace %s is not ready after %s: %s", name, namespace, timeout, last)
}

// rolloutDone is the deployment-level check kubectl rollout status makes.
func rolloutDone(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, fmt.Sprintf("rollout exceeded its progress deadline: %s", c.Message)
		}
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return false, fmt.Sprintf("cannot create pods: %s", c.Message)
		}
	}
	switch {
	case d.Generation > st.ObservedGeneration:
		return false, "the deployment controller has not seen the latest change yet"
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas are still terminating", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		return false, fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, want)
	}
	return true, ""
}

// podsReady checks that enough of the deployment's pods are Ready.
func (c *Cluster) podsReady(ctx context.Context, d *appsv1.Deployment) (bool, string, error) {
	pods, err := c.pods(ctx, d)
	if err != nil {
		return false, "", err
	}
	if ready, want := readyOf(d, pods); ready < want {
		return false, fmt.Sprintf("%d of %d pods Ready", ready, want), nil
	}
	return true, "", nil
}

// readyOf counts the Ready pods of d among pods (its own: listed by its
// selector) that are not being deleted, and the replicas d wants.
func readyOf(d *appsv1.Deployment, pods []corev1.Pod) (ready, want int32) {
	want = 1
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	for i := range pods {
		if pods[i].DeletionTimestamp == nil && podReady(&pods[i]) {
			ready++
		}
	}
	return ready, want
}

func (c *Cluster) pods(ctx context.Context, d *appsv1.Deployment) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment/%s has a bad selector: %w", d.Name, err)
	}
	list, err := c.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing pods of deployment/%s: %w", d.Name, err)
	}
	return list.Items, nil
}

// diagnose explains, from the pods, why the deployment is not ready.
func (c *Cluster) diagnose(ctx context.Context, d *appsv1.Deployment) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if done, msg := rolloutDone(d); !done && strings.HasPrefix(msg, "cannot create pods") {
		return msg
	}
	pods, err := c.pods(ctx, d)
	if err != nil {
		return ""
	}
	if len(pods) == 0 {
		return "no pods were created for it"
	}
	return explainPods(pods, c.podEvents(ctx, d.Namespace), c.podLogs(ctx, d.Namespace))
}

func (c *Cluster) podEvents(ctx context.Context, namespace string) func(pod string) []corev1.Event {
	return func(pod string) []corev1.Event {
		list, err := c.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod).String(),
		})
		if err != nil {
			return nil
		}
		return list.Items
	}
}

// explainPods turns pod states into one plain-words reason. The newest
// not-ready pod is described first; events and logs are fetched on demand.
func explainPods(pods []corev1.Pod, events func(pod string) []corev1.Event, logs func(pod, container string, previous bool) string) string {
	sort.SliceStable(pods, func(i, j int) bool {
		return pods[j].CreationTimestamp.Before(&pods[i].CreationTimestamp)
	})
	var reasons []string
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || podReady(p) {
			continue
		}
		if r := explainPod(p, events, logs); r != "" {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) == 0 {
		return ""
	}
	// Several replicas usually fail the same way: say it once.
	out := []string{reasons[0]}
	for _, r := range reasons[1:] {
		if len(out) < 3 && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}

func explainPod(p *corev1.Pod, events func(string) []corev1.Event, logs func(string, string, bool) string) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, c.Message)
		}
	}
	images := map[string]string{}
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		images[c.Name] = c.Image
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil {
			continue
		}
		image := images[cs.Name]
		if image == "" {
			image = cs.Image
		}
		switch w.Reason {
		case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull":
			return fmt.Sprintf("image %s is not in the cluster: load it (devenv loads the images it builds; check the image name of container %s) [%s]", image, cs.Name, w.Reason)
		case "InvalidImageName":
			return fmt.Sprintf("image name %q of container %s is invalid: %s", image, cs.Name, w.Message)
		case "CrashLoopBackOff":
			msg := fmt.Sprintf("container %s of pod %s keeps crashing (restarts: %d", cs.Name, p.Name, cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil {
				msg += fmt.Sprintf(", last exit code %d", t.ExitCode)
				if t.Reason != "" && t.Reason != "Error" {
					msg += ", " + t.Reason
				}
			}
			msg += ")"
			tail := strings.TrimSpace(logs(p.Name, cs.Name, true))
			if tail == "" {
				tail = strings.TrimSpace(logs(p.Name, cs.Name, false))
			}
			if tail != "" {
				msg += fmt.Sprintf("; last %d log lines:\n%s", logTail, lastLines(tail, logTail))
			} else {
				msg += "; it printed no logs"
			}
			return msg
		case "ContainerCreating", "PodInitializing", "":
		default:
			return fmt.Sprintf("container %s of pod %s is waiting: %s: %s", cs.Name, p.Name, w.Reason, w.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || cs.Ready {
			continue
		}
		var probe string
		for _, e := range events(p.Name) {
			if e.Reason == "Unhealthy" && strings.Contains(e.Message, "Readiness") {
				probe = e.Message
			}
		}
		if probe != "" {
			return fmt.Sprintf("the readiness probe of container %s in pod %s fails: %s", cs.Name, p.Name, strings.TrimSpace(probe))
		}
		return fmt.Sprintf("container %s of pod %s runs but is not Ready yet", cs.Name, p.Name)
	}
	for _, e := range events(p.Name) {
		if e.Type == corev1.EventTypeWarning {
			return fmt.Sprintf("pod %s: %s: %s", p.Name, e.Reason, strings.TrimSpace(e.Message))
		}
	}
	return fmt.Sprintf("pod %s is %s", p.Name, p.Status.Phase)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RolledOut says which of the named Deployments in namespace are rolled out
// at this moment, by WaitRollout's rules (the latest generation observed,
// every replica updated and available, enough pods Ready), from one listing
// of the namespace's Deployments and one of its Pods. It does not wait: a
// Deployment it leaves out (not rolled out, or not there) is for
// WaitRollout. With many services this answers a warm up in two requests
// instead of two per service.
func (c *Cluster) RolledOut(ctx context.Context, namespace string, names []string) (map[string]bool, error) {
	deps, err := c.Client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the deployments of namespace %s: %w", namespace, err)
	}
	pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of namespace %s: %w", namespace, err)
	}
	return rolledOut(deps.Items, pods.Items, names), nil
}

// rolledOut is RolledOut on listings.
func rolledOut(deps []appsv1.Deployment, pods []corev1.Pod, names []string) map[string]bool {
	out := map[string]bool{}
	for i := range deps {
		d := &deps[i]
		if !slices.Contains(names, d.Name) {
			continue
		}
		if done, _ := rolloutDone(d); !done {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		var own []corev1.Pod
		for j := range pods {
			if sel.Matches(labels.Set(pods[j].Labels)) {
				own = append(own, pods[j])
			}
		}
		if ready, want := readyOf(d, own); ready >= want {
			out[d.Name] = true
		}
	}
	return out
}

// WaitControllers waits until the cluster's controller manager has taken up
// each of the named Deployments of namespace: its status.observedGeneration
// has reached its generation. On a cluster kind has just created, the
// controller manager starts its controllers some seconds after the API
// server answers (measured on 2 cores: 2–5 s after kind returns), and no
// pod of a Deployment is made before; this wait makes that time a step of
// its own instead of a part of every rollout.
func (c *Cluster) WaitControllers(ctx context.Context, namespace string, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var waiting []string
	for {
		deps, err := c.Client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			if waiting = notObserved(deps.Items, names); len(waiting) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("listing the deployments of namespace %s: %w", namespace, err)
			}
			return fmt.Errorf("the cluster's controller manager has not taken up deployment %s in namespace %s after %s: see kubectl -n kube-system logs -l component=kube-controller-manager",
				strings.Join(waiting, ", "), namespace, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cluster's controller manager: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notObserved returns the named Deployments that are missing from deps or
// whose status does not yet reflect their latest generation, sorted.
func notObserved(deps []appsv1.Deployment, names []string) []string {
	seen := map[string]bool{}
	for i := range deps {
		d := &deps[i]
		if d.Status.ObservedGeneration >= d.Generation {
			seen[d.Name] = true
		}
	}
	var out []string
	for _, n := range names {
		if !seen[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// sandboxFreeze is what runc says when it cannot start a pod's sandbox
// because the cgroup v1 freezer raced ("error setting cgroup config for
// procHooks process: unable to freeze"): seen on cgroup v1 hosts when many
// pods start at once (a cold up of 20 services). The kubelet tries that
// pod's sandbox again only after a back-off (14 s measured); a new pod of
// the ReplicaSet starts at once.
const sandboxFreeze = "unable to freeze"

// sandboxRetries is what retryStuckSandboxes remembers during one wait.
type sandboxRetries struct {
	lastLook time.Time               // the pods are looked at once a second
	checked  map[types.UID]time.Time // when each pod's events were read
	deleted  map[types.UID]bool
}

// retryStuckSandboxes deletes, once each, the pods of d whose sandbox
// failed to start with sandboxFreeze, so that the ReplicaSet makes new
// ones now rather than the kubelet retrying after its back-off. Only a
// pod still Pending whose sandbox is not up 2 s after it was scheduled
// has its events read, at most once a second. Everything here only saves
// time: errors are ignored (the wait goes on as before).
func (c *Cluster) retryStuckSandboxes(ctx context.Context, d *appsv1.Deployment, r *sandboxRetries) {
	now := time.Now()
	if now.Sub(r.lastLook) < time.Second {
		return
	}
	r.lastLook = now
	if r.checked == nil {
		r.checked, r.deleted = map[types.UID]time.Time{}, map[types.UID]bool{}
	}
	pods, err := c.pods(ctx, d)
	if err != nil {
		return
	}
	for i := range pods {
		p := &pods[i]
		if r.deleted[p.UID] || !sandboxPending(p, now) || now.Sub(r.checked[p.UID]) < time.Second {
			continue
		}
		r.checked[p.UID] = now
		if !sandboxFroze(c.podEvents(ctx, p.Namespace)(p.Name)) {
			continue
		}
		uid := p.UID
		err := c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
		r.deleted[p.UID] = true
		if err == nil {
			c.log.Infof("pod %s: its sandbox did not start (runc: %s, a cgroup v1 race when many pods start at once); deleted it so that a new pod starts now instead of after the kubelet's back-off", p.Name, sandboxFreeze)
		}
	}
}

// sandboxPending says whether p is Pending, not being deleted, and its
// sandbox is not up (PodReadyToStartContainers False) 2 s after it was
// scheduled.
func sandboxPending(p *corev1.Pod, now time.Time) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodPending {
		return false
	}
	var scheduled time.Time
	sandboxDown := false
	for _, cond := range p.Status.Conditions {
		switch cond.Type {
		case corev1.PodScheduled:
			if cond.Status == corev1.ConditionTrue {
				scheduled = cond.LastTransitionTime.Time
			}
		case corev1.PodReadyToStartContainers:
			sandboxDown = cond.Status == corev1.ConditionFalse
		}
	}
	return sandboxDown && !scheduled.IsZero() && now.Sub(scheduled) >= 2*time.Second
}

// sandboxFroze says whether a pod's events hold a failed sandbox start
// with sandboxFreeze.
func sandboxFroze(events []corev1.Event) bool {
	for _, e := range events {
		if e.Reason == "FailedCreatePodSandBox" && strings.Contains(e.Message, sandboxFreeze) {
			return true
		}
	}
	return false
}
