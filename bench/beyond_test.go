package bench

// The measurements of "beyond one machine" (issue 14): a live update
// through the Kubernetes API against one from the kind node, and images
// through a registry against images loaded straight into the kind node.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/registry"
)

// setVersion writes the transfermoney copy in dir answering v on /version.
func setVersion(b *testing.B, dir, v string) {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "version.go"), []byte("package main\n\nconst version = \""+v+"\"\n"), 0o644); err != nil {
		b.Fatalf("writing version.go: %v", err)
	}
}

// answers returns a check that service svc of namespace ns answers want on
// /version.
func answers(ctx context.Context, c *cluster.Cluster, ns, svc, want string) func() error {
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

// transfermoneyTar builds the transfermoney copy in dir answering v (its
// build.sh, as devenv's prebuild runs it) and returns a tar holding the
// binary where the example's Dockerfile puts it (/transfermoney).
func transfermoneyTar(ctx context.Context, b *testing.B, dir, v string) []byte {
	b.Helper()
	setVersion(b, dir, v)
	if err := run(ctx, dir, nil, "./build.sh"); err != nil {
		b.Fatalf("building transfermoney %s: %v", v, err)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "bin", "transfermoney"))
	if err != nil {
		b.Fatalf("reading the built transfermoney: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "transfermoney", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		b.Fatalf("writing the update's tar: %v", err)
	}
	if _, err := tw.Write(bin); err != nil {
		b.Fatalf("writing the update's tar: %v", err)
	}
	if err := tw.Close(); err != nil {
		b.Fatalf("writing the update's tar: %v", err)
	}
	return buf.Bytes()
}

// BenchmarkLiveVia times cluster.LiveUpdate of the example's Go service
// (transfermoney, under devenv's supervisor in a cluster devenv created)
// through the Kubernetes API (LiveExec: pods/exec) against from its kind
// node (LiveNode: devenv's own supervisor copy, nsenter), alternating the
// two on the same container. A round's time is LiveUpdate's: from the
// call until the new program accepts connections (the build is not
// timed); the new version must then answer through the Service.
func BenchmarkLiveVia(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(b, docker)
	if err := kafka.ConfigureTestcontainers(); err != nil {
		b.Fatal(err)
	}
	name := testenv.Name("bench-")
	_, tm, cfg := project(b, name)
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	opts := devenv.Options{Kubeconfig: kubeconfig, Log: benchLog(b), Live: true, PrivilegedShim: true}
	b.Cleanup(func() {
		if err := devenv.Down(context.Background(), cfg, devenv.DownOptions{Options: opts}); err != nil {
			b.Errorf("down: %v", err)
		}
		testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
	})
	env, err := devenv.Up(ctx, cfg, opts)
	if err != nil {
		b.Fatalf("up: %v", err)
	}
	defer env.Close()
	c, ns := env.Cluster, cfg.Namespace
	targets, err := c.LiveTargets(ctx, ns, "transfermoney", "transfermoney")
	if err != nil || len(targets) != 1 {
		b.Fatalf("transfermoney's live targets: %v, %v; want its one pod", targets, err)
	}
	target := targets[0]
	update := func(via cluster.LiveVia, v string) time.Duration {
		files := transfermoneyTar(ctx, b, tm, v)
		t0 := time.Now()
		if err := c.LiveUpdate(ctx, docker, cluster.LiveChange{Target: target, Files: files, Port: 8080, Timeout: time.Minute, Via: via}); err != nil {
			b.Fatalf("live update via %s to %s: %v", via, v, err)
		}
		took := time.Since(t0)
		if err := testenv.Eventually(ctx, time.Minute, 100*time.Millisecond, answers(ctx, c, ns, "transfermoney", v)); err != nil {
			b.Fatalf("after the live update via %s: %v", via, err)
		}
		return took
	}
	// Once each, untimed: the first update from the node copies devenv's
	// supervisor onto it, and the first exec opens the connection.
	b.Logf("first updates (not counted): node %s, exec %s",
		update(cluster.LiveNode, "warm-node").Round(time.Millisecond), update(cluster.LiveExec, "warm-exec").Round(time.Millisecond))

	var execTimes, nodeTimes []time.Duration
	b.ResetTimer()
	for i := range rounds() {
		// Alternate which goes first, so that neither always follows the other.
		ways := []cluster.LiveVia{cluster.LiveExec, cluster.LiveNode}
		if i%2 == 1 {
			ways = []cluster.LiveVia{cluster.LiveNode, cluster.LiveExec}
		}
		for _, via := range ways {
			d := update(via, fmt.Sprintf("%s%d", via, i))
			if via == cluster.LiveExec {
				execTimes = append(execTimes, d)
			} else {
				nodeTimes = append(nodeTimes, d)
			}
		}
		b.Logf("round %d: exec %s, node %s", i, execTimes[i].Round(time.Millisecond), nodeTimes[i].Round(time.Millisecond))
	}
	b.StopTimer()
	after, err := c.LiveTargets(ctx, ns, "transfermoney", "transfermoney")
	if err != nil || len(after) != 1 || after[0].ContainerID != target.ContainerID {
		b.Fatalf("after the updates: targets %+v (%v), want the same container %s: an update replaced it", after, err, target.ContainerID)
	}
	e, n := median(execTimes), median(nodeTimes)
	b.ReportMetric(e.Seconds(), "exec-s")
	b.ReportMetric(n.Seconds(), "node-s")
	b.ReportMetric(e.Seconds()/n.Seconds(), "exec/node")
	b.Logf("live update, %d rounds: exec (pods/exec) median %s (%v), node (nsenter from the kind node) median %s (%v), ratio %.2f",
		len(execTimes), e, execTimes, n, nodeTimes, e.Seconds()/n.Seconds())
}

// wayResult is what BenchmarkRegistry measured for one way of getting
// images to the node.
type wayResult struct {
	up    time.Duration
	saves []time.Duration
}

// BenchmarkRegistry runs the cosmos example on one kind cluster the
// benchmark created itself (devenv did not), with a registry container on
// the kind network that the node's containerd pulls from, two ways: images
// loaded straight into the node (cluster.context, no registry: load) and
// pushed to the registry and pulled by the node (registry: registry). For
// each it times a cold up and save -> serving of a one-line change with
// the image swap (Options.Live off, so that every save builds, sends and
// rolls out an image).
//
// Cold means: the node holds none of the project's images (removed, with
// the containers that used them, once the previous way's namespace is
// gone; containerd then drops their layers) and the registry none (only
// the registry way, which runs last, uses it); the host is warm for both (an untimed up first builds every image, and
// each way's up builds the content the previous saves built), so that the
// two ups differ only in how the images reach the node.
func BenchmarkRegistry(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(b, docker)
	testenv.RequireImage(b, docker, testenv.RegistryImage, "registry stand-in")
	if err := kafka.ConfigureTestcontainers(); err != nil {
		b.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	kc := filepath.Join(tmp, "kubeconfig")
	name := testenv.Name("bench-")

	// One cluster, made without devenv, pulling from the registry container.
	reg := testenv.StartRegistry(b, ctx, docker, "reg-"+name)
	kcfg, err := registry.KindContainerd(reg.Host, reg.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	kind := testenv.NewKindCluster(b, ctx, testenv.Name("ext-"), testenv.NodeImage, kc, kcfg.ContainerdConfigPatches)
	kind.WriteNodeFiles(b, kcfg.Files)
	k, err := cluster.ConnectExisting(ctx, kind.Context, kc, cluster.Options{})
	if err != nil {
		b.Fatalf("connecting to the benchmark's cluster: %v", err)
	}

	tm := filepath.Join(tmp, "transfermoney")
	testenv.CopyDir(b, filepath.Join(root, "examples/cosmos/transfermoney"), tm)
	// Both ways are the same project (name, namespace, context): only
	// registry: differs.
	load := func(way string, withRegistry bool) (*config.Config, []string) {
		y := fmt.Sprintf("name: %s\nnamespace: %s\ncluster: {context: %s, kubeconfig: %s}\nservices:\n  transfermoney:\n    context: %s\n",
			name, name, kind.Context, kc, tm)
		if withRegistry {
			y += "registry: " + reg.Host + "\n"
		}
		override := filepath.Join(tmp, way+".yaml")
		if err := os.WriteFile(override, []byte(y), 0o644); err != nil {
			b.Fatal(err)
		}
		files := []string{filepath.Join(root, "devenv.yaml"), override}
		cfg, err := config.Load(files...)
		if err != nil {
			b.Fatalf("loading the %s way's config %s: %v", way, y, err)
		}
		if (cfg.Registry != nil) != withRegistry || cfg.Cluster.Context != kind.Context {
			b.Fatalf("the %s way's override did not take: registry %v, context %q", way, cfg.Registry, cfg.Cluster.Context)
		}
		return cfg, files
	}
	loadCfg, loadFiles := load("load", false)
	regCfg, regFiles := load("registry", true)

	out := &testenv.Log{}
	var logOut io.Writer = out
	if f := os.Getenv("DEVENV_BENCH_LOG"); f != "" {
		lf, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { lf.Close() })
		logOut = io.MultiWriter(out, lf)
	}
	saved := make(chan devenv.SaveSummary, 16)
	opts := devenv.Options{Log: log.New(logOut, os.Getenv("DEVENV_BENCH_LOG") != ""), RolloutTimeout: 4 * time.Minute,
		Live: false, PrivilegedShim: true, Saved: func(s devenv.SaveSummary) {
			select {
			case saved <- s:
			default:
			}
		}}
	// Runs before the cluster's deletion (cleanups run last first): the
	// Kafka container is outside the cluster, and only down removes it.
	b.Cleanup(func() {
		if err := devenv.Down(context.Background(), loadCfg, devenv.DownOptions{Options: opts}); err != nil {
			b.Errorf("down: %v", err)
		}
		testenv.RemoveImages(b, docker, build.LabelProject+"="+name)
	})

	// down removes the project and waits until its namespace is gone, then
	// removes the project's images from the node: the next way starts cold
	// on the node.
	node := kind.Name + "-control-plane"
	down := func(way string, cfg *config.Config) {
		if err := devenv.Down(ctx, cfg, devenv.DownOptions{Options: opts}); err != nil {
			b.Fatalf("down after the %s way: %v", way, err)
		}
		if err := testenv.Eventually(ctx, 3*time.Minute, time.Second, func() error {
			_, err := k.Client.CoreV1().Namespaces().Get(ctx, cfg.Namespace, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("namespace %s is still there", cfg.Namespace)
			}
			return err
		}); err != nil {
			b.Fatalf("after the %s way's down: %v", way, err)
		}
		// The kubelet removes a deleted pod's exited containers later (its
		// garbage collection), and they hold their images' layers: remove
		// the namespace's containers and sandboxes, then the project's
		// images (every name holding the project's), and wait for
		// containerd's garbage collection of their layers.
		const prune = `c=$(crictl ps -a -q --label io.kubernetes.pod.namespace="$1"); [ -z "$c" ] || crictl rm -f $c
p=$(crictl pods -q --namespace "$1"); [ -z "$p" ] || crictl rmp -f $p
i=$(ctr -n k8s.io images ls -q | grep -F -- "$2" || true); [ -z "$i" ] || ctr -n k8s.io images rm --sync $i`
		if err := testenv.Eventually(ctx, 3*time.Minute, 5*time.Second, func() error {
			out, code, err := dockerx.Exec(ctx, docker, node, []string{"sh", "-c", prune, "sh", cfg.Namespace, name}, nil, nil)
			if err != nil || code != 0 {
				return fmt.Errorf("removing the project's images from the node: %v (exit code %d): %s", err, code, out)
			}
			for _, ref := range kind.NodeImages(b) {
				if strings.Contains(ref, name) {
					return fmt.Errorf("the node still holds %s", ref)
				}
			}
			return nil
		}); err != nil {
			b.Fatalf("after the %s way the next would not start cold: %v", way, err)
		}
	}

	// Untimed: every image built once on this machine (and loaded).
	t0 := time.Now()
	env, err := devenv.Up(ctx, loadCfg, opts)
	if err != nil {
		b.Fatalf("the first (untimed) up: %v", err)
	}
	env.Close()
	b.Logf("first up, building every image (not counted): %s", time.Since(t0).Round(time.Millisecond))
	down("first", loadCfg)

	n := rounds()
	b.ResetTimer()
	measure := func(way string, cfg *config.Config, files []string, fromRegistry bool) wayResult {
		var r wayResult
		t0 := time.Now()
		env, err := devenv.Up(ctx, cfg, opts)
		if err != nil {
			b.Fatalf("cold up, %s way: %v", way, err)
		}
		r.up = time.Since(t0)
		defer env.Close()
		pods, err := k.Client.CoreV1().Pods(cfg.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatalf("listing the %s way's pods: %v", way, err)
		}
		for _, p := range pods.Items {
			for _, ct := range p.Spec.Containers {
				if strings.HasPrefix(ct.Image, reg.Host+"/") != fromRegistry {
					b.Fatalf("%s way: pod %s runs %s (from the registry %s: %v, want %v)", way, p.Name, ct.Image, reg.Host, !fromRegistry, fromRegistry)
				}
			}
		}
		b.Logf("%s: cold up %s", way, r.up.Round(time.Millisecond))

		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		watching := len(out.String())
		go func() { done <- env.Watch(wctx, files) }()
		defer func() {
			stop()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				b.Errorf("watch, %s way: %v", way, err)
			}
		}()
		if err := testenv.Eventually(ctx, 30*time.Second, 100*time.Millisecond, func() error {
			if !strings.Contains(out.String()[watching:], "watching 2 services") {
				return errors.New("the watcher has not started")
			}
			return nil
		}); err != nil {
			b.Fatalf("%s way: %v", way, err)
		}
		time.Sleep(time.Second) // let the watcher register its folders, as BenchmarkSaveToServing does
		for i := range n {
			for len(saved) > 0 {
				<-saved // not this round's
			}
			v := fmt.Sprintf("%s-%d", way, i)
			t0 := time.Now()
			setVersion(b, tm, v)
			if err := testenv.Eventually(ctx, 5*time.Minute, 100*time.Millisecond, answers(ctx, k, cfg.Namespace, "transfermoney", v)); err != nil {
				b.Fatalf("%s way, save %d: %v", way, i, err)
			}
			r.saves = append(r.saves, time.Since(t0))
			select {
			case s := <-saved:
				b.Logf("%s: save %d: %s after %s", way, i, s, r.saves[i].Round(time.Millisecond))
			case <-time.After(time.Minute):
				b.Fatalf("%s way, save %d: no save summary within a minute of the new version answering", way, i)
			}
		}
		return r
	}
	// The load way first: the registry stays empty until the registry way.
	lr := measure("load", loadCfg, loadFiles, false)
	down("load", loadCfg)
	rr := measure("registry", regCfg, regFiles, true)
	if uploads := reg.Uploads(b); uploads == 0 {
		b.Fatal("the registry way uploaded nothing to the registry")
	}
	b.StopTimer()
	down("registry", regCfg)

	ru, lu, rs, ls := rr.up.Seconds(), lr.up.Seconds(), median(rr.saves).Seconds(), median(lr.saves).Seconds()
	b.ReportMetric(ru, "registry-up-s")
	b.ReportMetric(lu, "load-up-s")
	b.ReportMetric(ru/lu, "registry/load-up")
	b.ReportMetric(rs, "registry-save-s")
	b.ReportMetric(ls, "load-save-s")
	b.ReportMetric(rs/ls, "registry/load-save")
	b.Logf("cold up: registry %s, load %s, ratio %.2f; save to serving (image swap), %d saves: registry median %s (%v), load median %s (%v), ratio %.2f",
		rr.up.Round(time.Millisecond), lr.up.Round(time.Millisecond), ru/lu, n, median(rr.saves), rr.saves, median(lr.saves), lr.saves, rs/ls)
}
