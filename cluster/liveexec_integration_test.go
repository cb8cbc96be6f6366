package cluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/supervise"
)

// liveApp deploys image as deployment name in namespace ns (created) and
// returns its one live target.
func liveApp(ctx context.Context, t *testing.T, c *Cluster, docker *client.Client, ns, name, image string) LiveTarget {
	t.Helper()
	if _, err := c.LoadImage(ctx, docker, image); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, objs(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n---"+echoApp(ns, name, image)),
		ApplyOptions{Selector: map[string]string{"devenv.dev/project": ns}}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRollout(ctx, ns, name, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	targets, err := c.LiveTargets(ctx, ns, name, "echo")
	if err != nil || len(targets) != 1 {
		t.Fatalf("LiveTargets: %v, %v; want the one pod", targets, err)
	}
	return targets[0]
}

// serviceAnswer is what the echo service svc answers, through the API
// server's proxy.
func serviceAnswer(ctx context.Context, c *Cluster, ns, svc string) string {
	b, err := c.Client.CoreV1().Services(ns).ProxyGet("http", svc, "80", "/", nil).DoRaw(ctx)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// supervisedImage is the echo test image with devenv's supervisor as its
// first process, as devenv assembles them; extra lines go before the
// ENTRYPOINT.
func supervisedImage(ctx context.Context, t *testing.T, docker *client.Client, extra string) string {
	t.Helper()
	sup, err := supervise.Binary(ctx, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	return derivedImageWith(t, docker, testImage(t, docker), "COPY supervise /.devenv/supervise\n"+extra+
		`ENTRYPOINT ["/.devenv/supervise", "--", "/echo"]`, map[string][]byte{"supervise": sup})
}

// TestIntegrationLiveUpdateExec updates a container through the
// Kubernetes API (pods/exec), then through its node, and logs how long
// each took.
func TestIntegrationLiveUpdateExec(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := "it-liveexec"
	before := liveApp(ctx, t, c, docker, ns, "live", supervisedImage(ctx, t, docker, ""))

	for i, step := range []struct {
		via     LiveVia
		version string
	}{{LiveExec, "two"}, {LiveNode, "three"}, {LiveExec, "four"}, {LiveNode, "five"}} {
		bin := echoBinary(t, step.version)
		start := time.Now()
		if err := c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, bin), Port: 8080, Timeout: time.Minute, Via: step.via}); err != nil {
			t.Fatalf("update %d via %s: %v", i, step.via, err)
		}
		t.Logf("live update via %s took %s", step.via, time.Since(start))
		if got := serviceAnswer(ctx, c, ns, "live"); !strings.Contains(got, "version "+step.version) {
			t.Errorf("after the update via %s the service answers %q, want version %s", step.via, got, step.version)
		}
	}
	after, err := c.LiveTargets(ctx, ns, "live", "echo")
	if err != nil || len(after) != 1 || after[0].Pod != before.Pod || after[0].ContainerID != before.ContainerID {
		t.Errorf("targets after the updates %+v (%v), want the same pod and container as %+v", after, err, before)
	}

	// Not a program: the start fails, reported with the exec path too.
	err = c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, []byte("not a program\n")), Port: 8080, Timeout: 30 * time.Second, Via: LiveExec})
	if err == nil || !strings.Contains(err.Error(), "exec format error") || errors.Is(err, ErrNoLive) {
		t.Errorf("a broken binary via exec: err = %v, want the start's failure", err)
	}
	if err := c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, echoBinary(t, "six")), Port: 8080, Timeout: time.Minute, Via: LiveExec}); err != nil {
		t.Fatalf("putting a good binary back via exec: %v", err)
	}

	// A container without the supervisor: ErrNoLive through exec too.
	plain := liveApp(ctx, t, c, docker, ns, "plain", testImage(t, docker))
	err = c.LiveUpdate(ctx, docker, LiveChange{Target: plain, Files: tarOf(t, "echo", 0o755, echoBinary(t, "two")), Port: 8080, Timeout: time.Minute, Via: LiveExec})
	if !errors.Is(err, ErrNoLive) {
		t.Errorf("no supervisor via exec: err = %v, want ErrNoLive", err)
	}
	if got := serviceAnswer(ctx, c, ns, "plain"); strings.Contains(got, "version") || !strings.Contains(got, "hello from") {
		t.Errorf("the container without supervisor answers %q, want its old self", got)
	}
}

// TestIntegrationLiveUpdateExecNonRoot: an image running as user 1000
// whose files are root's cannot be updated through exec: ErrNoLive saying
// so, and nothing changed.
func TestIntegrationLiveUpdateExecNonRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := "it-livenonroot"
	target := liveApp(ctx, t, c, docker, ns, "live", supervisedImage(ctx, t, docker, "USER 1000\n"))

	err := c.LiveUpdate(ctx, docker, LiveChange{Target: target, Files: tarOf(t, "echo", 0o755, echoBinary(t, "two")), Port: 8080, Timeout: time.Minute, Via: LiveExec})
	if !errors.Is(err, ErrNoLive) || !strings.Contains(err.Error(), "user 1000 cannot write /echo: permission denied") {
		t.Fatalf("err = %v, want ErrNoLive saying user 1000 cannot write /echo", err)
	}
	if got := serviceAnswer(ctx, c, ns, "live"); strings.Contains(got, "version") || !strings.Contains(got, "hello from") {
		t.Errorf("the service answers %q, want its old self", got)
	}
	after, err := c.LiveTargets(ctx, ns, "live", "echo")
	if err != nil || len(after) != 1 || after[0].ContainerID != target.ContainerID {
		t.Errorf("targets after the refused update %+v (%v), want the same container", after, err)
	}
}

// TestIntegrationLiveUpdateNodeRunsNodeCopy: a container that replaced
// its /.devenv/supervise (as an image running as root can) does not get
// it run from the node: devenv runs its own copy.
func TestIntegrationLiveUpdateNodeRunsNodeCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := "it-livenode"
	target := liveApp(ctx, t, c, docker, ns, "live", supervisedImage(ctx, t, docker, ""))

	// The stand-in for a replaced supervisor: run, it writes
	// /devenv-marker in whatever root it runs in.
	markerBin := filepath.Join(t.TempDir(), "marker")
	build := exec.Command("go", "build", "-trimpath", "-o", markerBin, "./testdata/marker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the marker: %v\n%s", err, out)
	}
	marker, err := os.ReadFile(markerBin)
	if err != nil {
		t.Fatal(err)
	}
	node := func(script string, stdin []byte, args ...string) (string, int) {
		t.Helper()
		out, code, err := dockerx.Exec(ctx, docker, target.Node, append([]string{"sh", "-c", script, "sh", target.ContainerID}, args...), stdin, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out, code
	}
	const pid = `p=$(cat /run/containerd/io.containerd.runtime.v2.task/k8s.io/"$1"/init.pid)` + "\n"
	// What a root process in the container can do: replace the file.
	if out, code := node(pid+`cat > /proc/$p/root/.devenv/supervise.new && chmod 755 /proc/$p/root/.devenv/supervise.new && mv /proc/$p/root/.devenv/supervise.new /proc/$p/root/.devenv/supervise`, marker); code != 0 {
		t.Fatalf("replacing the container's supervisor: %s (exit code %d)", out, code)
	}
	markers := func() string {
		out, _ := node(pid+`for f in /proc/$p/root/devenv-marker /devenv-marker; do [ -e "$f" ] && echo "$f"; done; true`, nil)
		return strings.TrimSpace(out)
	}

	if err := c.LiveUpdate(ctx, docker, LiveChange{Target: target, Files: tarOf(t, "echo", 0o755, echoBinary(t, "two")), Port: 8080, Timeout: time.Minute, Via: LiveNode}); err != nil {
		t.Fatalf("live update from the node: %v", err)
	}
	if got := serviceAnswer(ctx, c, ns, "live"); !strings.Contains(got, "version two") {
		t.Errorf("after the update the service answers %q, want version two", got)
	}
	if m := markers(); m != "" {
		t.Fatalf("the container's replaced supervisor ran: %s", m)
	}

	// The control: the old way (nsenter into the mount namespace, running
	// the container's file) runs the marker, so the check above can fail.
	if out, code := node(pid+`nsenter -t "$p" -m -u -i -n -p -r -w /.devenv/supervise update --`, nil); code != 0 {
		t.Fatalf("the old way: %s (exit code %d)", out, code)
	}
	if m := markers(); !strings.Contains(m, "/root/devenv-marker") {
		t.Fatalf("the old way did not run the marker (markers %q): the test proves nothing", m)
	}
}
