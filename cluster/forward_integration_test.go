package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// readyEvent is a pod becoming Ready, as the test's own watch saw it.
type readyEvent struct {
	pod      string
	since    time.Time // the Ready condition's lastTransitionTime (whole seconds)
	observed time.Time // when the watch delivered it
}

// watchReady records every change of a pod of app=name to Ready from
// start on.
func watchReady(t *testing.T, c *Cluster, ns, name string, start time.Time) (events func() []readyEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := c.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []readyEvent
	ready := map[string]bool{}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			since, isReady := readySince(p)
			mu.Lock()
			if isReady && !ready[p.Name] && !since.Before(start.Truncate(time.Second)) {
				out = append(out, readyEvent{pod: p.Name, since: since, observed: time.Now()})
			}
			ready[p.Name] = isReady
			mu.Unlock()
		}
	}()
	return func() []readyEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]readyEvent(nil), out...)
	}
}

// pollFor opens a new connection to url every 50 ms, without waiting for
// the ones still open, until an answer contains want. It returns when the
// first such connection was opened: a request that hangs on a pod being
// stopped (until its 2 s timeout) does not delay the ones after it, so the
// time says from when new connections reached the pod that answers want.
func pollFor(ctx context.Context, url, want string) (time.Time, string, error) {
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	type answer struct {
		opened time.Time
		body   string
		ok     bool
	}
	answers := make(chan answer, 64)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, which ends the connections still open
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ask := func() {
		defer wg.Done()
		a := answer{opened: time.Now()}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = cl.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a.body = string(b)
				a.ok = strings.Contains(a.body, want)
			}
		}
		if err != nil {
			a.body = err.Error()
		}
		select {
		case answers <- a:
		case <-ctx.Done():
		}
	}
	var last, good string
	var first time.Time // the earliest opening that got want
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	inFlight := 0
	wg.Add(1)
	inFlight++
	go ask()
	for {
		select {
		case a := <-answers:
			inFlight--
			last = a.body
			if a.ok && (first.IsZero() || a.opened.Before(first)) {
				first, good = a.opened, a.body
			}
			// Done once every connection opened before the first good
			// one has answered, so that an earlier good one is not missed.
			if !first.IsZero() && inFlight == 0 {
				return first, good, nil
			}
		case <-tick.C:
			if first.IsZero() {
				wg.Add(1)
				inFlight++
				go ask()
			}
		case <-ctx.Done():
			if !first.IsZero() {
				return first, good, nil
			}
			return time.Time{}, last, fmt.Errorf("no answer with %q (last: %q): %w", want, last, ctx.Err())
		}
	}
}

func TestIntegrationForwardFollows(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	base := testImage(t, docker)
	// Images of its own: the shared base must reach the cluster first
	// through TestIntegrationLoadImageAndService, which checks that load.
	v1 := derivedImage(t, docker, base, "ENV ECHO_VERSION=one")
	v2 := derivedImage(t, docker, base, "ENV ECHO_VERSION=two")
	v3 := derivedImage(t, docker, base, "ENV ECHO_VERSION=three")
	ctx := context.Background()
	for _, img := range []string{v1, v2, v3} {
		if _, err := c.LoadImage(ctx, docker, img); err != nil {
			t.Fatal(err)
		}
	}
	ns := "it-forward"
	if _, err := c.Apply(ctx, objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---`+echoApp(ns, "echo", v1)), ApplyOptions{Selector: map[string]string{"devenv.dev/project": "it-forward"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRollout(ctx, ns, "echo", 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	f, err := c.Forward(ctx, ForwardSpec{Namespace: ns, Service: "echo", Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	url := "http://" + f.Addr() + "/"
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, out, err := pollFor(wctx, url, "hello from")
	cancel()
	if err != nil {
		t.Fatalf("the forward does not answer: %v", err)
	}
	t.Logf("forward %s answers: %q", f.Addr(), strings.TrimSpace(out))

	// A second forward on the same host port is refused with the port named.
	if _, err := c.Forward(ctx, ForwardSpec{Namespace: ns, Service: "echo", Port: 80, HostPort: f.HostPort()}); err == nil || !strings.Contains(err.Error(), f.Addr()) {
		t.Errorf("second forward on %s: err = %v, want the taken port named", f.Addr(), err)
	}

	// check measures how long after the new pod became Ready a new
	// connection through the forward reached it.
	check := func(what, version string, change func() error) {
		t.Helper()
		start := time.Now()
		events := watchReady(t, c, ns, "echo", start)
		answered := make(chan time.Time, 1)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		go func() {
			at, _, err := pollFor(pctx, url, "version "+version)
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			answered <- at
		}()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		changed := time.Now()
		at := <-answered
		if at.IsZero() {
			return
		}
		time.Sleep(200 * time.Millisecond) // let the watch deliver what it saw
		var ready *readyEvent
		for _, e := range events() {
			if !e.observed.After(at) {
				ready = &e
			}
		}
		// An image swap restarts the container inside the same pod, which
		// may stay Ready throughout (its last Ready event is then from
		// before the change returned, or, on a loaded machine, the watch
		// delivers the pod's state only after the answer): the new version
		// is ready when the change returns, since SwapImages and
		// WaitRollout wait for it.
		ref := changed
		if ready != nil && ready.observed.After(ref) {
			ref = ready.observed
		}
		lag := at.Sub(ref)
		if ready != nil {
			t.Logf("%s: pod %s Ready at %s (seen %s after the change); a connection opened %s after the pod was seen Ready got version %s, %s after its Ready condition time (whole seconds)",
				what, ready.pod, ready.since.Format(time.RFC3339), ready.observed.Sub(start).Round(time.Millisecond),
				lag.Round(time.Millisecond), version, at.Sub(ready.since).Round(time.Millisecond))
		} else {
			t.Logf("%s: a connection opened %s after the change returned got version %s (no Ready event seen before the answer: %+v)",
				what, lag.Round(time.Millisecond), version, events())
		}
		if lag > time.Second {
			t.Errorf("%s: the first connection to get the new version was opened %s after the pod became Ready, want at most 1s", what, lag)
		}
	}

	check("image swap", "two", func() error {
		return c.SwapImages(ctx, ns, "echo", map[string]string{"echo": v2}, time.Minute)
	})
	check("rollout", "three", func() error {
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"it.devenv.dev/rev":"3"}},"spec":{"containers":[{"name":"echo","image":%q}]}}}}`, v3)
		if _, err := c.Client.AppsV1().Deployments(ns).Patch(ctx, "echo", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
		return c.WaitRollout(ctx, ns, "echo", 2*time.Minute)
	})
}
