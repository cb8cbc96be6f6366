package devenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationFaultWatching runs one environment (Kafka with a topic,
// one service whose saves are live updates) and, while Watch runs, puts it
// through two faults:
//
//   - a burst of 100 saves in 60 s to the service: every save is served or
//     superseded by a later one, none fails, the last one serves, and
//     afterwards the process's goroutines and open files are within ±5 and
//     its RSS within ±10% of before;
//   - the Docker daemon killed (SIGKILL) and started again: the watch loop
//     says that Docker stopped answering and when it is back, the service
//     answers again, the topic's records survive, and a save after it is
//     served.
//
// Then Down must leave nothing of the project in Docker. Each fault prints
// its figures as "fault: ...".
func TestIntegrationFaultWatching(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: a save burst and a Docker daemon restart while watching")
	}
	dockerd := testenv.FindDockerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	if err := kafka.ConfigureTestcontainers(); err != nil {
		t.Fatal(err)
	}

	tmp := t.TempDir()
	svc := testenv.GoService(t, ctx, "./testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	if err := os.WriteFile(filepath.Join(svc, "Dockerfile"), []byte("FROM scratch\nCOPY probe /probe\nCOPY version.txt /version.txt\nENTRYPOINT [\"/probe\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	version := filepath.Join(svc, "version.txt")
	save := func(v string) {
		t.Helper()
		if err := os.WriteFile(version, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	save("v0")
	name := testenv.Name("it-fw-")
	file := filepath.Join(tmp, "devenv.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
kafka: {topics: [faults]}
services:
  probe:
    context: ./probe
    port: 8080
`, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.Log{TB: t}
	var mu sync.Mutex
	var saved []SaveSummary
	opts := Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), Log: log.New(out, true), RolloutTimeout: 4 * time.Minute,
		PrivilegedShim: true, Live: true, Saved: func(s SaveSummary) { mu.Lock(); saved = append(saved, s); mu.Unlock() }}
	savedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(saved) }
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if err := Down(context.Background(), cfg, DownOptions{Options: opts}); err != nil {
				t.Errorf("down: %v", err)
			}
		}
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})

	env, err := Up(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	defer env.Close()
	c, ns := env.Cluster, cfg.Namespace
	serves := func(want string) func() error {
		return func() error {
			b, err := testenv.Proxy(ctx, c, ns, "GET", "probe:8080", "/version", nil)
			if err != nil {
				return fmt.Errorf("GET /version: %v: %s", err, b)
			}
			if string(b) != want {
				return fmt.Errorf("GET /version answers %q, want %q", b, want)
			}
			return nil
		}
	}
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, serves("v0")); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- env.Watch(wctx, []string{file}) }()
	if err := testenv.Eventually(ctx, 30*time.Second, 200*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "watching 1 services") {
			return errors.New("watcher not started")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("save burst", func(t *testing.T) {
		// A few saves first: what the first saves set up (caches, the
		// forwards, connections) is not a leak.
		for i := range 3 {
			v := fmt.Sprintf("warm-%d", i)
			n := savedCount()
			save(v)
			if err := testenv.Eventually(ctx, time.Minute, 100*time.Millisecond, func() error {
				if savedCount() == n {
					return errors.New("no save served yet")
				}
				return serves(v)()
			}); err != nil {
				t.Fatalf("warm-up save %d: %v", i, err)
			}
		}
		settle(ctx)
		before := sample()
		failedBefore := strings.Count(out.String(), "✗")
		n0 := savedCount()
		const saves = 100
		start := time.Now()
		for i := range saves {
			save("burst-" + strconv.Itoa(i))
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * 600 * time.Millisecond)))
		}
		last := fmt.Sprintf("burst-%d", saves-1)
		if err := testenv.Eventually(ctx, 2*time.Minute, 100*time.Millisecond, serves(last)); err != nil {
			t.Fatalf("after the burst: %v", err)
		}
		// The batch that served the last save may still be finishing: wait
		// until no summary came for 3 s.
		prev := -1
		_ = testenv.Eventually(ctx, 30*time.Second, 3*time.Second, func() error {
			n := savedCount()
			if n == prev {
				return nil
			}
			prev = n
			return errors.New("summaries still coming")
		})
		batches := savedCount() - n0
		failed := strings.Count(out.String(), "✗") - failedBefore
		if failed > 0 {
			t.Errorf("%d failure lines during the burst:\n%s", failed, out.String())
		}
		if batches == 0 || batches > saves {
			t.Errorf("%d batches served for %d saves", batches, saves)
		}
		// After the burst, within a bound: what is left must be what was
		// there before (goroutines that end late, e.g. idle connections,
		// are given a few seconds).
		var after usage
		_ = testenv.Eventually(ctx, 20*time.Second, time.Second, func() error {
			after = sample()
			return before.within(after)
		})
		fmt.Fprintf(os.Stderr, "fault: %d saves in %s: %d batches served, %d saves superseded, %d failed; goroutines %d → %d, open files %d → %d, RSS %.1f → %.1f MB\n",
			saves, time.Since(start).Round(time.Second), batches, saves-batches, failed,
			before.goroutines, after.goroutines, before.fds, after.fds, before.rssMB, after.rssMB)
		if err := before.within(after); err != nil {
			t.Error(err)
		}
	})

	t.Run("docker daemon restart", func(t *testing.T) {
		ep := env.Kafka
		if ep == nil {
			t.Fatal("up started no Kafka")
		}
		values := make([]string, 20)
		for i := range values {
			values[i] = fmt.Sprintf("kept-%d", i)
		}
		produce(ctx, t, ep.HostAddress, "faults", values)

		down := dockerd.Restart(t, ctx, docker)
		back := time.Now()
		if err := testenv.Eventually(ctx, 5*time.Minute, time.Second, serves(fmt.Sprintf("burst-%d", 99))); err != nil {
			t.Fatalf("the service does not answer after Docker's restart: %v", err)
		}
		answered := time.Since(back) + down
		for _, want := range []string{"✗ Docker does not answer", "✓ Docker answers again after "} {
			if err := testenv.Eventually(ctx, 30*time.Second, 200*time.Millisecond, func() error {
				if !strings.Contains(out.String(), want) {
					return fmt.Errorf("the watch loop never said %q", want)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		}
		// The broker restarted with its volume: the topic and its records.
		now, found, err := kafka.Find(ctx, docker, ProjectID(cfg).Key())
		if err != nil || !found {
			t.Fatalf("Kafka after the restart: found %v, %v", found, err)
		}
		var recs []*kgo.Record
		if err := testenv.Eventually(ctx, time.Minute, time.Second, func() error {
			recs, err = consumeAll(ctx, now.HostAddress, "faults", len(values))
			return err
		}); err != nil {
			t.Fatalf("reading the topic after Docker's restart: %v", err)
		}
		for i, r := range recs {
			if i < len(values) && string(r.Value) != values[i] {
				t.Errorf("record %d after the restart is %q, want %q", i, r.Value, values[i])
			}
		}
		// The watcher survived: a save is served.
		n := savedCount()
		save("after-restart")
		if err := testenv.Eventually(ctx, 2*time.Minute, 200*time.Millisecond, func() error {
			if savedCount() == n {
				return errors.New("no save served yet")
			}
			return serves("after-restart")()
		}); err != nil {
			t.Errorf("a save after Docker's restart: %v", err)
		}
		fmt.Fprintf(os.Stderr, "fault: Docker daemon killed and started again: Docker answered after %s, the service after %s; %d of %d records kept; a save after it served\n",
			down.Round(100*time.Millisecond), answered.Round(100*time.Millisecond), min(len(recs), len(values)), len(values))
	})

	stop()
	if err := <-watchErr; err != nil {
		t.Errorf("Watch returned %v after Ctrl-C, want nil", err)
	}
	env.Close()
	if err := Down(ctx, cfg, DownOptions{Options: opts}); err != nil {
		t.Fatalf("down: %v", err)
	}
	downDone = true
	f := client.Filters{}.Add("label", project.LabelProject+"="+ProjectID(cfg).Key())
	left, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil || len(left.Items) != 0 {
		t.Errorf("after down: %d containers of the project (%v)", len(left.Items), err)
	}
	vols, err := docker.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil || len(vols.Items) != 0 {
		t.Errorf("after down: %d volumes of the project (%v)", len(vols.Items), err)
	}
	nodes, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "io.x-k8s.kind.cluster="+cfg.Cluster.Name)})
	if err != nil || len(nodes.Items) != 0 {
		t.Errorf("after down: %d node containers of cluster %s (%v)", len(nodes.Items), cfg.Cluster.Name, err)
	}
}

// usage is what the test process holds: goroutines, open files, resident memory.
type usage struct {
	goroutines, fds int
	rssMB           float64
}

// sample measures the process after a collection that returns freed memory
// to the system, so that RSS compares what is kept, not garbage.
func sample() usage {
	// Idle keep-alive connections (a registry's, kept 90 s after the last
	// push or tag lookup) are not work the process holds: close them before
	// counting, so that one expiring between two samples is not counted as
	// a change (each is a file and two goroutines).
	for _, tr := range []http.RoundTripper{http.DefaultTransport, remote.DefaultTransport} {
		if t, ok := tr.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
	}
	time.Sleep(200 * time.Millisecond) // their goroutines end
	runtime.GC()
	debug.FreeOSMemory()
	u := usage{goroutines: runtime.NumGoroutine()}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.fds = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, ln := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(ln, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				u.rssMB = kb / 1024
			}
		}
	}
	return u
}

// within checks the bounds of the issue: goroutines and open files ±5, RSS ±10%.
func (b usage) within(a usage) error {
	var errs []string
	if d := a.goroutines - b.goroutines; d > 5 || d < -5 {
		errs = append(errs, fmt.Sprintf("goroutines %d → %d (more than ±5)", b.goroutines, a.goroutines))
	}
	if d := a.fds - b.fds; d > 5 || d < -5 {
		errs = append(errs, fmt.Sprintf("open files %d → %d (more than ±5)", b.fds, a.fds))
	}
	if b.rssMB > 0 && (a.rssMB > b.rssMB*1.1 || a.rssMB < b.rssMB*0.9) {
		errs = append(errs, fmt.Sprintf("RSS %.1f → %.1f MB (more than ±10%%)", b.rssMB, a.rssMB))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// settle waits for the process to go quiet: until three samples a second
// apart count the same goroutines and open files (at most 20 s).
func settle(ctx context.Context) {
	var last []usage
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(time.Second) {
		u := sample()
		last = append(last, u)
		if n := len(last); n >= 3 && last[n-3].goroutines == u.goroutines && last[n-2].goroutines == u.goroutines &&
			last[n-3].fds == u.fds && last[n-2].fds == u.fds {
			return
		}
	}
}

// produce writes values to topic through the broker's host listener.
func produce(ctx context.Context, t *testing.T, addr, topic string, values []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("producing to %s via %s: %v", topic, addr, err)
		}
	}
}
