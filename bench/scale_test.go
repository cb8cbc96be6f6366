package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// BenchmarkScale measures what grows with a project: generated projects of
// N small Go HTTP services plus Kafka (N from DEVENV_BENCH_SCALE, default
// "2,8,20"), and one of 2 services whose first has 50,000 files in 1,000
// folders in its context. For each, as a developer runs it (the CLI, one
// process): cold `up` (new cluster) until ready, then, while it watches,
// DEVENV_BENCH_SAVES saves (default 100) spread over the services, each
// waited for (its "✓" line) before the next; the watching process's RSS
// and open files at start, after 10 and after all saves; then, after one
// `up --no-watch` that deploys what the saves wrote into the containers and
// the end of the pods it replaced, a warm `up --no-watch` (median of 3),
// and a watching `up` started again until it watches (→watching, median
// of 3: the watch setup of a new process on a running environment). A
// bare `kind create cluster` on the same machine in the same run is the
// baseline of the cold ups.
//
//	go test -run '^$' -bench Scale -benchtime 1x -timeout 90m -v ./bench/
func BenchmarkScale(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(b, docker)
	cli := devenvCLI(b)
	kind := kindCLI(b)
	probe := b.TempDir()
	testenv.GoService(b, ctx, "../internal/devenv/testdata/h2probe", probe, "probe")

	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	bare := bareKind(ctx, b, docker, kind, kubeconfig)
	withPod, _, _ := kindWithPod(ctx, b, docker, kind, kubeconfig)

	sizes := []int{2, 8, 20}
	if s := os.Getenv("DEVENV_BENCH_SCALE"); s != "" {
		sizes = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("DEVENV_BENCH_SCALE=%q: want numbers like 2,8,20", s)
			}
			sizes = append(sizes, n)
		}
	}
	saves := 100
	if n, err := strconv.Atoi(os.Getenv("DEVENV_BENCH_SAVES")); err == nil && n >= 10 {
		saves = n
	}
	type row struct {
		name                       string
		cold, warm, save, restart  time.Duration
		rss0, rss10, rssN          int64
		fd0, fdN                   int
		served, superseded, failed int
	}
	var rows []row
	type scaleCase struct {
		name               string
		services, bigFiles int
	}
	var cases []scaleCase
	for _, n := range sizes {
		cases = append(cases, scaleCase{fmt.Sprintf("N=%d", n), n, 0})
	}
	cases = append(cases, scaleCase{"N=2,50k-files", 2, 50000})

	b.ResetTimer()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			name := testenv.Name("scale-")
			dir := b.TempDir()
			file := scaleProject(b, dir, name, probe, c.services, c.bigFiles)
			args := []string{"-f", file, "--kubeconfig", kubeconfig}
			b.Cleanup(func() {
				_ = run(context.Background(), "", nil, append([]string{cli, "down"}, args...)...)
				testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
			})

			w := startWatching(ctx, b, cli, append([]string{"up"}, args...))
			r := row{name: c.name}
			r.cold = w.waitLine(b, "is ready in", 15*time.Minute)
			time.Sleep(2 * time.Second)
			r.rss0, r.fd0 = procStats(w.cmd.Process.Pid)
			var lat []time.Duration
			for i := range saves {
				svc := fmt.Sprintf("s%02d", i%c.services+1)
				if err := os.WriteFile(filepath.Join(dir, svc, "data", "version.txt"), []byte(strconv.Itoa(i)), 0o644); err != nil {
					b.Fatal(err)
				}
				d, outcome := w.waitSave(svc, 60*time.Second)
				switch outcome {
				case "served":
					r.served++
					lat = append(lat, d)
				case "failed":
					r.failed++
				default:
					r.superseded++
				}
				if i == 9 {
					r.rss10, _ = procStats(w.cmd.Process.Pid)
				}
			}
			r.rssN, r.fdN = procStats(w.cmd.Process.Pid)
			r.save = median(lat)
			w.stop(b)

			// The first up after watching deploys what the saves only wrote
			// into the running containers (new images, a rollout per
			// service): not a warm up with nothing changed, so not timed.
			if err := run(ctx, "", nil, append([]string{cli, "up", "--no-watch"}, args...)...); err != nil {
				b.Fatal(err)
			}
			// The replaced pods end meanwhile (20 at once keep 2 cores
			// busy for seconds): a warm up is timed on a cluster at rest,
			// as a developer's next up finds it.
			settle(ctx, b, kubeconfig, name)
			var warm []time.Duration
			for range 3 {
				t0 := time.Now()
				if err := run(ctx, "", nil, append([]string{cli, "up", "--no-watch"}, args...)...); err != nil {
					b.Fatal(err)
				}
				warm = append(warm, time.Since(t0))
			}
			r.warm = median(warm)
			// Watching again in a new process: until it watches, with the
			// running images' parts ready for the first save's live update.
			var restart []time.Duration
			for range 3 {
				w := startWatching(ctx, b, cli, append([]string{"up"}, args...))
				restart = append(restart, w.waitLine(b, "services for changes", 5*time.Minute))
				w.stop(b)
			}
			r.restart = median(restart)
			rows = append(rows, r)
			b.ReportMetric(r.cold.Seconds(), "cold-up-s")
			b.ReportMetric(r.cold.Seconds()/bare.Seconds(), "cold/bare")
			b.ReportMetric(r.cold.Seconds()/withPod.Seconds(), "cold/kind-with-pod")
			b.ReportMetric(r.warm.Seconds(), "warm-up-s")
			b.ReportMetric(r.save.Seconds(), "save-to-updated-s")
			b.ReportMetric(r.restart.Seconds(), "restart-to-watching-s")
			b.ReportMetric(float64(r.rssN)/1024, "rss-end-MiB")
		})
	}
	b.StopTimer()
	var sb strings.Builder
	fmt.Fprintf(&sb, "bare kind create cluster: %s; kind with a pod (BenchmarkUp's kindWithPod): %s\n", bare.Round(100*time.Millisecond), withPod.Round(100*time.Millisecond))
	fmt.Fprintf(&sb, "%-14s %8s %9s %10s %7s %9s %9s %10s %10s %10s %8s %7s %s\n", "project", "cold up", "cold/bare", "cold/w-pod", "warm up", "→watching", "save→upd", "RSS start", "RSS 10", fmt.Sprintf("RSS %d", saves), "fds", "served", "superseded/failed")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-14s %7.1fs %9.2f %10.2f %6.2fs %8.2fs %8.2fs %8.0fMB %8.0fMB %8.0fMB %3d→%-3d %7d %d/%d\n", r.name,
			r.cold.Seconds(), r.cold.Seconds()/bare.Seconds(), r.cold.Seconds()/withPod.Seconds(), r.warm.Seconds(), r.restart.Seconds(), r.save.Seconds(),
			float64(r.rss0)/1024, float64(r.rss10)/1024, float64(r.rssN)/1024, r.fd0, r.fdN, r.served, r.superseded, r.failed)
	}
	b.Logf("scale:\n%s", sb.String())
	fmt.Fprint(os.Stderr, sb.String())
}

// scaleProject writes a project of n copies of the probe service (each
// COPYing data/ so that a save there is a files-only change) and Kafka;
// the first service gets bigFiles more files in 1,000 folders.
func scaleProject(b *testing.B, dir, name, probe string, n, bigFiles int) string {
	bin, err := os.ReadFile(filepath.Join(probe, "probe"))
	if err != nil {
		b.Fatal(err)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "name: %s\nkafka: {topics: [scale]}\nservices:\n", name)
	for i := 1; i <= n; i++ {
		svc := fmt.Sprintf("s%02d", i)
		d := filepath.Join(dir, svc)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "probe"), bin, 0o755); err != nil {
			b.Fatal(err)
		}
		df := "FROM scratch\nCOPY probe /probe\nCOPY data /data\nENTRYPOINT [\"/probe\"]\n"
		if err := os.WriteFile(filepath.Join(d, "Dockerfile"), []byte(df), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "data", "version.txt"), []byte("start"), 0o644); err != nil {
			b.Fatal(err)
		}
		if i == 1 && bigFiles > 0 {
			for f := range bigFiles {
				sub := filepath.Join(d, "data", "many", fmt.Sprintf("d%04d", f%1000))
				if f < 1000 {
					if err := os.MkdirAll(sub, 0o755); err != nil {
						b.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d.txt", f)), []byte(strconv.Itoa(f)), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		fmt.Fprintf(&y, "  %s:\n    context: ./%s\n    port: 8080\n", svc, svc)
	}
	file := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(file, []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return file
}

// settle waits (up to 2 minutes) until no pod of the project's namespace
// (the project's name, on cluster kind-<name>) is being deleted.
func settle(ctx context.Context, b *testing.B, kubeconfig, name string) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", kubeconfig, "--context", "kind-"+name, "-n", name,
			"get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.deletionTimestamp}{\"\\n\"}{end}").Output()
		if err != nil {
			b.Fatalf("listing the pods of %s: %v", name, err)
		}
		if strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("pods of %s still being deleted after 2 minutes", name)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// watching is a `devenv up` process that watches, with its output lines.
type watching struct {
	cmd   *exec.Cmd
	start time.Time
	mu    sync.Mutex
	lines []string
	next  int // the first line waitSave has not looked at
	done  chan struct{}
}

func startWatching(ctx context.Context, b *testing.B, cli string, args []string) *watching {
	w := &watching{cmd: exec.CommandContext(ctx, cli, args...), start: time.Now(), done: make(chan struct{})}
	pr, pw := io.Pipe()
	w.cmd.Stdout, w.cmd.Stderr = pw, pw
	if err := w.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = w.cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	return w
}

// waitLine waits for a line containing s and returns the time since start.
func (w *watching) waitLine(b *testing.B, s string, timeout time.Duration) time.Duration {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for i := w.next; i < len(w.lines); i++ {
			if strings.Contains(w.lines[i], s) {
				w.next = i + 1
				w.mu.Unlock()
				return time.Since(w.start)
			}
		}
		w.mu.Unlock()
		select {
		case <-w.done:
			b.Fatalf("devenv up ended before %q:\n%s", s, w.tail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.Fatalf("no %q within %s:\n%s", s, timeout, w.tail())
	return 0
}

// waitSave waits until the service's save is served ("svc ✓"), failed
// ("✗ svc") or the timeout passes (superseded or lost), and returns how
// long it took.
func (w *watching) waitSave(svc string, timeout time.Duration) (time.Duration, string) {
	t0 := time.Now()
	for time.Since(t0) < timeout {
		w.mu.Lock()
		for i := w.next; i < len(w.lines); i++ {
			l := w.lines[i]
			if strings.Contains(l, svc+" ✓ ") {
				w.next = i + 1
				w.mu.Unlock()
				return time.Since(t0), "served"
			}
			if strings.Contains(l, "✗ "+svc) {
				w.next = i + 1
				w.mu.Unlock()
				return time.Since(t0), "failed"
			}
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return timeout, "timeout"
}

func (w *watching) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines[max(0, len(w.lines)-30):], "\n")
}

// stop interrupts the watching up (Ctrl-C) and waits for it to end.
func (w *watching) stop(b *testing.B) {
	_ = w.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-w.done:
	case <-time.After(time.Minute):
		_ = w.cmd.Process.Kill()
		b.Errorf("devenv up did not stop within a minute of SIGINT:\n%s", w.tail())
	}
}

// procStats is a process's resident memory (KiB) and open files.
func procStats(pid int) (rssKiB int64, fds int) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		fds = len(ents)
	}
	return rssKiB, fds
}
