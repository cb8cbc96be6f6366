package cluster

import (
	"archive/tar"
	"bytes"
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

// echoBinary builds the echo test program with its version set at build time.
func echoBinary(t *testing.T, version string) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "echo")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -X main.version="+version, "-o", bin, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building echo: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tarOf(t *testing.T, name string, mode int64, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIntegrationLiveUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	base := testImage(t, docker)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sup, err := supervise.Binary(ctx, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	// What devenv's assembled images do: the supervisor runs the image's
	// command.
	live := derivedImageWith(t, docker, base, `COPY supervise /.devenv/supervise
ENTRYPOINT ["/.devenv/supervise", "--", "/echo"]`, map[string][]byte{"supervise": sup})
	for _, img := range []string{base, live} {
		if _, err := c.LoadImage(ctx, docker, img); err != nil {
			t.Fatal(err)
		}
	}
	ns := "it-live"
	if _, err := c.Apply(ctx, objs(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n---"+echoApp(ns, "live", live)+"---"+echoApp(ns, "plain", base)),
		ApplyOptions{Selector: map[string]string{"devenv.dev/project": "it-live"}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"live", "plain"} {
		if err := c.WaitRollout(ctx, ns, d, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(svc string) string {
		b, err := c.Client.CoreV1().Services(ns).ProxyGet("http", svc, "80", "/", nil).DoRaw(ctx)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	targets, err := c.LiveTargets(ctx, ns, "live", "echo")
	if err != nil || len(targets) != 1 {
		t.Fatalf("LiveTargets: %v, %v; want the one pod", targets, err)
	}
	before := targets[0]

	v2 := echoBinary(t, "two")
	start := time.Now()
	if err := c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, v2), Port: 8080, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	t.Logf("live update took %s", time.Since(start))
	if got := answer("live"); !strings.Contains(got, "version two") {
		t.Errorf("after the update the service answers %q, want version two", got)
	}
	after, err := c.LiveTargets(ctx, ns, "live", "echo")
	if err != nil || len(after) != 1 || after[0].Pod != before.Pod || after[0].ContainerID != before.ContainerID {
		t.Errorf("targets after the update %+v (%v), want the same pod and container as %+v", after, err, before)
	}

	// Not a program: the start fails, reported; the good binary back serves.
	err = c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, []byte("not a program\n")), Port: 8080, Timeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "exec format error") {
		t.Errorf("a broken binary: err = %v, want the start's failure", err)
	}
	if err := c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, v2), Port: 8080, Timeout: time.Minute}); err != nil {
		t.Fatalf("putting the good binary back: %v", err)
	}
	if got := answer("live"); !strings.Contains(got, "version two") {
		t.Errorf("after putting it back the service answers %q", got)
	}

	// A container without the supervisor: ErrNoLive, nothing written.
	plain, err := c.LiveTargets(ctx, ns, "plain", "echo")
	if err != nil {
		t.Fatal(err)
	}
	err = c.LiveUpdate(ctx, docker, LiveChange{Target: plain[0], Files: tarOf(t, "echo", 0o755, v2), Port: 8080, Timeout: time.Minute})
	if !errors.Is(err, ErrNoLive) {
		t.Errorf("no supervisor: err = %v, want ErrNoLive", err)
	}
	if got := answer("plain"); strings.Contains(got, "version") || !strings.Contains(got, "hello from") {
		t.Errorf("the container without supervisor answers %q, want its old self", got)
	}
	if _, err := c.LiveTargets(ctx, ns, "absent", "echo"); !errors.Is(err, ErrNoLive) {
		t.Errorf("missing deployment: err = %v, want ErrNoLive", err)
	}

	// The updates above went through one agent on the node, kept open.
	node := before.Node
	c.nodes.mu.Lock()
	a := c.nodes.agents[node]
	c.nodes.mu.Unlock()
	if a == nil || !a.answered {
		t.Fatalf("no agent that answered on node %s after the updates: %+v", node, a)
	}
	pids := agentPIDs(ctx, t, docker, node)
	if len(pids) != 1 {
		t.Fatalf("agent processes on node %s: %v, want one", node, pids)
	}
	// Killed behind devenv's back: the next update starts another.
	if out, code, err := dockerx.Exec(ctx, docker, node, []string{"kill", pids[0]}, nil, nil); err != nil || code != 0 {
		t.Fatalf("killing the agent: %v, %d: %s", err, code, out)
	}
	v3 := echoBinary(t, "three")
	if err := c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, v3), Port: 8080, Timeout: time.Minute}); err != nil {
		t.Fatalf("update after the agent was killed: %v", err)
	}
	if got := answer("live"); !strings.Contains(got, "version three") {
		t.Errorf("after the agent was killed, the update left %q, want version three", got)
	}
	if again := agentPIDs(ctx, t, docker, node); len(again) != 1 || again[0] == pids[0] {
		t.Errorf("agent processes after the kill and an update: %v, want one new one (the old was %s)", again, pids[0])
	}
	// Close ends it.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(agentPIDs(ctx, t, docker, node)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := agentPIDs(ctx, t, docker, node); len(left) > 0 {
		t.Errorf("agent processes after Close: %v, want none", left)
	}
	// Readied ahead of the next update, twice: one agent, and the update
	// goes through it.
	for range 2 {
		if err := c.PrepareLiveUpdates(ctx, docker); err != nil {
			t.Fatalf("PrepareLiveUpdates: %v", err)
		}
	}
	ready := agentPIDs(ctx, t, docker, node)
	if len(ready) != 1 {
		t.Fatalf("agent processes after PrepareLiveUpdates: %v, want one", ready)
	}
	if err := c.LiveUpdate(ctx, docker, LiveChange{Target: before, Files: tarOf(t, "echo", 0o755, v2), Port: 8080, Timeout: time.Minute}); err != nil {
		t.Fatalf("update after PrepareLiveUpdates: %v", err)
	}
	if got := answer("live"); !strings.Contains(got, "version two") {
		t.Errorf("after PrepareLiveUpdates and an update the service answers %q, want version two", got)
	}
	if now := agentPIDs(ctx, t, docker, node); len(now) != 1 || now[0] != ready[0] {
		t.Errorf("agent processes after the update: %v, want the one readied (%s)", now, ready[0])
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// agentPIDs returns the PIDs of devenv's node agents on node.
func agentPIDs(ctx context.Context, t *testing.T, docker *client.Client, node string) []string {
	t.Helper()
	script := `for f in /proc/[0-9]*/cmdline; do c=$(tr '\0' ' ' < "$f" 2>/dev/null) || continue
case "$c" in /usr/local/lib/devenv/supervise-*" agent "*) p=${f#/proc/}; echo "${p%/cmdline}";; esac; done`
	out, code, err := dockerx.Exec(ctx, docker, node, []string{"sh", "-c", script}, nil, nil)
	if err != nil || code != 0 {
		t.Fatalf("listing the node's processes: %v, %d: %s", err, code, out)
	}
	return strings.Fields(out)
}
