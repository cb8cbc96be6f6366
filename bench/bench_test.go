package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/devenvtest"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/templates"
)

func rounds() int {
	if n, err := strconv.Atoi(os.Getenv("DEVENV_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// benchLog is devenv's logger: with DEVENV_BENCH_LOG=FILE, its debug
// output (-v) goes to FILE, to see where a slow round spent its time.
func benchLog(b *testing.B) *log.Logger {
	name := os.Getenv("DEVENV_BENCH_LOG")
	if name == "" {
		return log.New(&testenv.Log{}, false)
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return log.New(f, true)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// project prepares a copy of the example's transfermoney service and an
// override file naming a fresh cluster; it returns the config files, the
// copy's folder and the loaded config.
func project(b *testing.B, name string) ([]string, string, *config.Config) {
	return projectWith(b, name, "")
}

// projectWith is project with more lines for the override file.
func projectWith(b *testing.B, name, extra string) ([]string, string, *config.Config) {
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	tm := filepath.Join(tmp, "transfermoney")
	testenv.CopyDir(b, filepath.Join(root, "examples/cosmos/transfermoney"), tm)
	override := filepath.Join(tmp, "override.yaml")
	if err := os.WriteFile(override, []byte(fmt.Sprintf("name: %s\ncluster: {name: %s}\nservices:\n  transfermoney:\n    context: %s\n%s", name, name, tm, extra)), 0o644); err != nil {
		b.Fatal(err)
	}
	files := []string{filepath.Join(root, "devenv.yaml"), override}
	cfg, err := config.Load(files...)
	if err != nil {
		b.Fatal(err)
	}
	return files, tm, cfg
}

// kindCLI builds the kind CLI from its module once per run.
func kindCLI(b *testing.B) string {
	dir := b.TempDir()
	cmd := exec.Command("go", "install", "sigs.k8s.io/kind@v0.33.0")
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the kind CLI: %v\n%s", err, out)
	}
	return filepath.Join(dir, "kind")
}

func run(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// saveCase is one service BenchmarkSaveToServing saves and waits for.
type saveCase struct {
	lang       string             // metric prefix ("" for Go, the first case)
	svc        string             // the service; its manual copy is svc+"-manual"
	dir        string             // the benchmark's copy of its sources
	setVersion func(v string)     // saves the version the service answers on /version
	buildArgs  []string           // the manual docker build's --build-arg flags
	times      [3][]time.Duration // devenv, manual, devenv's own
}

func BenchmarkSaveToServing(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(b, docker)
	kind := kindCLI(b)
	name := testenv.Name("bench-")
	// The Java service (account) gets a copy of its own too, so that the
	// rounds edit its Version.java there.
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	acct := filepath.Join(b.TempDir(), "account")
	testenv.CopyDir(b, filepath.Join(root, "examples/cosmos/account"), acct)
	files, tm, cfg := projectWith(b, name, "  account:\n    context: "+acct+"\n")
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	// Live update is what `devenv up` does while watching;
	// DEVENV_BENCH_LIVE=0 measures the image swap instead.
	opts := devenv.Options{Kubeconfig: kubeconfig, Log: benchLog(b), Live: os.Getenv("DEVENV_BENCH_LIVE") != "0", PrivilegedShim: true}
	// Each save's summary: devenv's own overhead, as its line prints it.
	saved := make(chan devenv.SaveSummary, 16)
	opts.Saved = func(s devenv.SaveSummary) {
		select {
		case saved <- s:
		default:
		}
	}
	if err := kafka.ConfigureTestcontainers(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = devenv.Down(context.Background(), cfg, devenv.DownOptions{Options: opts})
		testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
	})
	env, err := devenv.Up(ctx, cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	// The manual loop's kind CLI needs the same privileged workaround as devenv
	// on engines that refuse --privileged: Up installed it in PATH.
	c := env.Cluster
	ns := cfg.Namespace
	// The manual loop's Java base: the Dockerfile's JRE_IMAGE when this
	// machine has it or can pull it, else the stand-in devenv used, as a
	// user without a registry would pass it.
	jreImage := ""
	for _, svc := range cfg.Services {
		if svc.Name == "account" {
			jreImage = svc.Args["JRE_IMAGE"]
		}
	}
	jre, err := images.Resolve(ctx, docker, jreImage, nil)
	if err != nil {
		b.Fatal(err)
	}
	versionJava := filepath.Join(acct, "src/main/java/cosmos/account/Version.java")
	javaSrc, err := os.ReadFile(versionJava)
	if err != nil {
		b.Fatal(err)
	}
	versionConst := regexp.MustCompile(`VERSION = "[^"]*"`)
	if !versionConst.Match(javaSrc) {
		b.Fatalf("%s has no VERSION = \"...\"", versionJava)
	}
	cases := []*saveCase{{
		svc: "transfermoney", dir: tm,
		setVersion: func(v string) {
			if err := os.WriteFile(filepath.Join(tm, "version.go"), []byte("package main\n\nconst version = \""+v+"\"\n"), 0o644); err != nil {
				b.Fatal(err)
			}
		},
	}, {
		lang: "java-", svc: "account", dir: acct,
		setVersion: func(v string) {
			// One line changes, as a developer's edit of Version.java.
			if err := os.WriteFile(versionJava, versionConst.ReplaceAll(javaSrc, []byte(`VERSION = "`+v+`"`)), 0o644); err != nil {
				b.Fatal(err)
			}
		},
		buildArgs: []string{"--build-arg", "JRE_IMAGE=" + jre.Ref},
	}}
	// The manual loop gets its own copy of each Deployment and Service, as
	// a user without devenv would have: the two loops alternate on the same
	// cluster without undoing each other's work.
	for _, sc := range cases {
		manualCopy(ctx, b, c, ns, sc.svc, sc.svc+"-manual")
	}
	answers := func(svc, want string) func() error {
		return func() error {
			body, err := testenv.Proxy(ctx, c, ns, "GET", svc+":8080", "/version", nil)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(body)); got != want {
				return fmt.Errorf("version %q, want %q", got, want)
			}
			return nil
		}
	}
	manualEnv := []string{"KUBECONFIG=" + kubeconfig, "DOCKER_BUILDKIT=0"}
	b.ResetTimer()
	for i := range rounds() {
		for _, sc := range cases {
			// devenv: save, and wait until the new version answers.
			wctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- env.Watch(wctx, files) }()
			time.Sleep(time.Second) // let the watcher register its folders
			for len(saved) > 0 {
				<-saved // not this round's
			}
			v := fmt.Sprintf("d%d", i)
			t0 := time.Now()
			sc.setVersion(v)
			if err := testenv.Eventually(ctx, 5*time.Minute, 100*time.Millisecond, answers(sc.svc, v)); err != nil {
				b.Fatalf("%s: devenv round %d: %v", sc.svc, i, err)
			}
			d := time.Since(t0)
			// The batch may end just after the new version answers.
			select {
			case s := <-saved:
				sc.times[2] = append(sc.times[2], s.Own())
				b.Logf("%s: round %d: %s", sc.svc, i, s)
			case <-time.After(time.Minute):
				b.Fatalf("%s: devenv round %d: no save summary within a minute of the new version answering", sc.svc, i)
			}
			stop()
			<-done

			// manual: what a user types, timed until the new version answers.
			v = fmt.Sprintf("m%d", i)
			ref := fmt.Sprintf("devenv.local/%s-%s:manual-%d", name, sc.svc, i)
			b.Cleanup(func() {
				_, _ = docker.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			})
			t0 = time.Now()
			sc.setVersion(v)
			steps := [][]string{
				{"./build.sh"},
				append(append([]string{"docker", "build", "-q"}, sc.buildArgs...), "-t", ref, "."),
				{kind, "load", "docker-image", ref, "--name", cfg.Cluster.Name},
				{"kubectl", "-n", ns, "set", "image", "deployment/" + sc.svc + "-manual", sc.svc + "=" + ref},
				{"kubectl", "-n", ns, "rollout", "status", "deployment/" + sc.svc + "-manual", "--timeout=5m"},
			}
			for _, s := range steps {
				if err := run(ctx, sc.dir, manualEnv, s...); err != nil {
					b.Fatalf("%s: manual round %d: %v", sc.svc, i, err)
				}
			}
			if err := testenv.Eventually(ctx, 5*time.Minute, 100*time.Millisecond, answers(sc.svc+"-manual", v)); err != nil {
				b.Fatalf("%s: manual round %d: %v", sc.svc, i, err)
			}
			m := time.Since(t0)
			sc.times[0] = append(sc.times[0], d)
			sc.times[1] = append(sc.times[1], m)
			b.Logf("%s: round %d: devenv %s, manual %s", sc.svc, i, d.Round(10*time.Millisecond), m.Round(10*time.Millisecond))
		}
	}
	b.StopTimer()
	for _, sc := range cases {
		d, m, own := median(sc.times[0]), median(sc.times[1]), median(sc.times[2])
		b.ReportMetric(d.Seconds(), sc.lang+"devenv-s")
		b.ReportMetric(m.Seconds(), sc.lang+"manual-s")
		b.ReportMetric(d.Seconds()/m.Seconds(), sc.lang+"devenv/manual")
		b.ReportMetric(own.Seconds(), sc.lang+"devenv-own-s")
		b.Logf("%s: save to serving, %d rounds: devenv median %s (%v), manual median %s (%v), ratio %.2f; devenv's own overhead per save median %s (%v)",
			sc.svc, len(sc.times[0]), d, sc.times[0], m, sc.times[1], d.Seconds()/m.Seconds(), own, sc.times[2])
	}
}

// manualCopy copies Deployment and Service name to a new name selecting
// its own pods (app=<to>), without devenv's project label, so that devenv
// neither prunes it nor streams its logs.
func manualCopy(ctx context.Context, b *testing.B, c *cluster.Cluster, ns, name, to string) {
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	sel := map[string]string{templates.LabelApp: to}
	md := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: to, Namespace: ns, Labels: sel}, Spec: *d.Spec.DeepCopy()}
	md.Spec.Selector = &metav1.LabelSelector{MatchLabels: sel}
	md.Spec.Template.Labels = sel
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, md, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ms := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: to, Namespace: ns, Labels: sel}, Spec: corev1.ServiceSpec{Selector: sel, Ports: svc.Spec.Ports}}
	for i := range ms.Spec.Ports {
		ms.Spec.Ports[i].NodePort = 0
	}
	if _, err := c.Client.CoreV1().Services(ns).Create(ctx, ms, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := c.WaitRollout(ctx, ns, to, 3*time.Minute); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkUp(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(b, docker)
	kind := kindCLI(b)
	cli := devenvCLI(b)
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	n := rounds()
	if n > 3 {
		n = 3 // each round creates three clusters
	}
	lg := benchLog(b) // with DEVENV_BENCH_LOG=FILE, every up's -v output goes to FILE
	var cold, coldLoad, bare, withPod, withPodReady, withPodDNS, warm, warmIn []time.Duration
	var phases []coldPhases
	b.ResetTimer()
	for range n {
		bare = append(bare, bareKind(ctx, b, docker, kind, kubeconfig))
		total, pod, dns := kindWithPod(ctx, b, docker, kind, kubeconfig)
		withPod, withPodReady, withPodDNS = append(withPod, total), append(withPodReady, pod), append(withPodDNS, dns)

		// The same cold up with registry: none (images loaded into the
		// node, the default before registry: local was measured faster):
		// the default's baseline.
		{
			name := testenv.Name("bench-load-")
			_, _, cfg := projectWith(b, name, "registry: none\n")
			opts := devenv.Options{Kubeconfig: kubeconfig, Log: lg, PrivilegedShim: true, Live: true}
			if err := kafka.ConfigureTestcontainers(); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			env, err := devenv.Up(ctx, cfg, opts)
			if err != nil {
				b.Fatal(err)
			}
			coldLoad = append(coldLoad, time.Since(t0))
			env.Close()
			if err := devenv.Down(ctx, cfg, devenv.DownOptions{Options: opts}); err != nil {
				b.Fatal(err)
			}
			testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
		}

		name := testenv.Name("bench-")
		files, _, cfg := project(b, name)
		// Live as the CLI builds (with or without --no-watch), so that the
		// CLI's warm up below finds the images current.
		opts := devenv.Options{Kubeconfig: kubeconfig, Log: lg, PrivilegedShim: true, Live: true}
		if err := kafka.ConfigureTestcontainers(); err != nil {
			b.Fatal(err)
		}
		steps := newStepClock()
		opts.Observer = steps
		t0 := time.Now()
		env, err := devenv.Up(ctx, cfg, opts)
		if err != nil {
			b.Fatal(err)
		}
		cold = append(cold, time.Since(t0))
		opts.Observer = nil
		var svcs []string
		for _, s := range cfg.Services {
			svcs = append(svcs, s.Name)
		}
		phases = append(phases, steps.phases(cfg.Cluster.Name, svcs))
		if p := phases[len(phases)-1]; p.services > 10*time.Second {
			// A slow round: what its pods went through.
			logEvents(ctx, b, env.Cluster, cfg.Namespace, fmt.Sprintf("round %d: the services were Ready %.1fs after the controllers", len(phases), p.services.Seconds()))
		}
		env.Close()
		// warm up as the speed issue measures it: a CLI process, from exec to exit
		t0 = time.Now()
		if err := run(ctx, "", nil, cli, "up", "--no-watch", "-f", files[0], "-f", files[1], "--kubeconfig", kubeconfig); err != nil {
			b.Fatal(err)
		}
		warm = append(warm, time.Since(t0))
		// and in this process, without the process's start and the config load
		t0 = time.Now()
		env, err = devenv.Up(ctx, cfg, opts)
		if err != nil {
			b.Fatal(err)
		}
		warmIn = append(warmIn, time.Since(t0))
		env.Close()
		if err := devenv.Down(ctx, cfg, devenv.DownOptions{Options: opts}); err != nil {
			b.Fatal(err)
		}
		testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
	}
	b.StopTimer()
	b.ReportMetric(median(cold).Seconds(), "cold-up-s")
	b.ReportMetric(median(bare).Seconds(), "bare-kind-s")
	b.ReportMetric(median(cold).Seconds()/median(bare).Seconds(), "cold/bare")
	b.ReportMetric(median(warm).Seconds(), "warm-up-s")
	b.ReportMetric(median(warmIn).Seconds(), "warm-up-inprocess-s")
	b.ReportMetric(median(coldLoad).Seconds(), "cold-up-load-s")
	b.ReportMetric(median(cold).Seconds()/median(coldLoad).Seconds(), "registry/load-cold")
	b.ReportMetric(median(withPod).Seconds(), "kind-with-pod-s")
	b.ReportMetric(median(cold).Seconds()/median(withPod).Seconds(), "cold/kind-with-pod")
	b.Logf("cold up %v (registry: local, the default), bare kind create %v, warm up %v (CLI process), %v (in process); cold up with registry: none (loads) %v", cold, bare, warm, warmIn, coldLoad)
	b.Logf("kind with a pod (bare kind, then the DNS probe every 1s as devenv sets it, a one-pod Deployment of the node's pause image Ready and the cluster DNS rolled out) %v; after kind returned, the pod Ready after %v, then the DNS %v more", withPod, withPodReady, withPodDNS)
	for i, p := range phases {
		b.Logf("cold up round %d: %s (total %.1fs)", i+1, p, cold[i].Seconds())
	}
	b.Logf("cold up, median of each phase: %s", medianPhases(phases))
}

// bareKind times a bare `kind create cluster` on the same node image (with
// the privileged workaround devenv installs in PATH on this engine), the
// baseline of the cold ups, and deletes the cluster.
func bareKind(ctx context.Context, b *testing.B, docker *client.Client, kind, kubeconfig string) time.Duration {
	_, took, remove := createKind(ctx, b, docker, kind, kubeconfig, "bare-")
	remove()
	return took
}

// createKind runs a bare `kind create cluster` with the kind CLI on the
// node image (after the privileged workaround devenv installs in PATH on
// this engine), its context written to kubeconfig. It returns the
// cluster's name, how long kind took, and what deletes the cluster.
func createKind(ctx context.Context, b *testing.B, docker *client.Client, kind, kubeconfig, prefix string) (name string, took time.Duration, remove func()) {
	if _, err := cluster.InstallPrivilegedShim(ctx, testenv.NodeImage, cluster.Options{Docker: docker}); err != nil {
		b.Fatal(err)
	}
	name = testenv.Name(prefix)
	env := []string{"KUBECONFIG=" + kubeconfig}
	remove = func() { _ = run(ctx, "", env, kind, "delete", "cluster", "--name", name) }
	t0 := time.Now()
	if err := run(ctx, "", env, kind, "create", "cluster", "--name", name, "--image", testenv.NodeImage, "--wait", "3m"); err != nil {
		remove()
		b.Fatal(err)
	}
	return name, time.Since(t0), remove
}

// devenvCLI builds bin/devenv's command once per run, into a folder of the
// benchmark's.
func devenvCLI(b *testing.B) string {
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "devenv")
	if err := run(context.Background(), root, nil, "go", "build", "-o", bin, "./cmd/devenv"); err != nil {
		b.Fatalf("building the devenv CLI: %v", err)
	}
	return bin
}

// scope is a testing.TB whose cleanups run when the benchmark says, not at
// its end: each Start's shared lock and forwards end before the next Start.
type scope struct {
	testing.TB
	cleanups []func()
}

func (s *scope) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

// end runs the cleanups, last registered first, as testing does.
func (s *scope) end() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

func BenchmarkStart(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(b, docker)
	name := testenv.Name("bench-")
	files, _, cfg := project(b, name) // a project of its own: never the cosmos cluster
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	b.Cleanup(func() {
		opts := devenv.Options{Kubeconfig: kubeconfig, Log: log.New(&testenv.Log{}, false)}
		if err := devenv.Down(context.Background(), cfg, devenv.DownOptions{Options: opts}); err != nil {
			b.Errorf("down: %v", err)
		}
		testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
	})
	opts := []devenvtest.Option{devenvtest.WithFile(files...), devenvtest.WithKubeconfig(kubeconfig),
		devenvtest.WithLogger(benchLog(b).Slog()), devenvtest.WithTimeout(30 * time.Minute)}
	start := func() (time.Duration, *scope) {
		s := &scope{TB: b}
		t0 := time.Now()
		devenvtest.Start(s, opts...)
		return time.Since(t0), s
	}
	b.ResetTimer()
	// cold: no cluster, no containers
	cold, s := start()
	s.end()
	// on a current environment: Up finds nothing to do, then shares it
	var warm, attach []time.Duration
	for range rounds() {
		d, s := start()
		warm = append(warm, d)
		s.end()
	}
	// while another user holds it (a watching devenv up, another test
	// binary): Up is refused at once, and Attach checks it instead
	_, holder := start()
	for range rounds() {
		d, s := start()
		attach = append(attach, d)
		s.end()
	}
	holder.end()
	b.StopTimer()
	b.ReportMetric(cold.Seconds(), "cold-start-s")
	b.ReportMetric(median(warm).Seconds(), "warm-start-s")
	b.ReportMetric(median(attach).Seconds(), "attach-start-s")
	b.Logf("devenvtest.Start: cold %s, on a current environment %v, beside another holder %v", cold, warm, attach)
}
