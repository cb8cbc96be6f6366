package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
)

// killedChildEnv, when set, makes TestIntegrationKilledDuringCreate the child
// that calls Ensure (and gets killed); its value is the child's killedJob.
const killedChildEnv = "DEVENV_IT_KILLED_CHILD"

type killedJob struct {
	Spec     Spec
	StateDir string
}

// TestIntegrationKilledDuringCreate is issue 12's first fault: devenv killed
// (SIGKILL) while kind starts the control plane leaves a node container
// behind; the next Ensure must recreate the cluster, not reuse a node that
// never takes pods.
func TestIntegrationKilledDuringCreate(t *testing.T) {
	if job := os.Getenv(killedChildEnv); job != "" {
		killedChild(t, job)
		return
	}
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	docker := testDocker(t)
	requireNodeImage(t, docker)
	ctx := context.Background()
	if _, err := docker.NetworkInspect(ctx, NetworkName, client.NetworkInspectOptions{}); err != nil {
		suite.netCreated = true // TestMain's teardown removes it when unused
	}
	dir := t.TempDir()
	job := killedJob{
		Spec: Spec{
			Name:       "devenv-it-killed-" + randSuffix(),
			Image:      nodeImage,
			Kubeconfig: filepath.Join(dir, "kubeconfig"),
			Wait:       3 * time.Minute,
		},
		StateDir: filepath.Join(dir, "state"),
	}
	spec := job.Spec
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := Delete(ctx, spec.Name, spec.Kubeconfig, Options{StateDir: job.StateDir}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		// kind deletes the nodes it lists; make sure of it.
		if ids, err := nodeIDs(ctx, docker, spec.Name); err == nil {
			for _, id := range ids {
				_, _ = docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
			}
		}
	})

	// The child: this test binary again, calling Ensure, killed 3 s after
	// kind says "Starting control-plane" (kubeadm init, which takes far
	// longer than that).
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestIntegrationKilledDuringCreate$", "-test.v")
	child.Env = append(os.Environ(), killedChildEnv+"="+string(b))
	out, err := child.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stdout = child.Stderr // the pipe: one stream to watch
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	childStart := time.Now()
	marker := make(chan struct{})
	var childOut lockedBuffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(&childOut, line)
			if !seen && strings.Contains(line, "Starting control-plane") {
				seen = true
				close(marker)
			}
		}
	}()
	select {
	case <-marker:
	case <-readDone:
		_ = child.Wait()
		t.Fatalf("the child ended before kind started the control plane:\n%s", childOut.String())
	case <-time.After(4 * time.Minute):
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("kind did not start the control plane within 4m:\n%s", childOut.String())
	}
	markerAt := time.Since(childStart)
	time.Sleep(3 * time.Second)
	if err := child.Process.Kill(); err != nil {
		t.Fatalf("killing the child: %v", err)
	}
	// Wait closes the pipe, which ends the reader even if a process the
	// child started (kind's docker CLI calls) still holds the pipe open.
	werr := child.Wait()
	<-readDone
	t.Logf("child killed %s after it started (%s after \"Starting control-plane\"): %v",
		time.Since(childStart).Round(100*time.Millisecond), (time.Since(childStart) - markerAt).Round(100*time.Millisecond), werr)
	if child.ProcessState.Success() {
		t.Fatalf("the child finished its create before the kill; the test proves nothing:\n%s", childOut.String())
	}

	// The fault as the issue saw it: a node container left, a record that
	// says "creating".
	ids, err := nodeIDs(ctx, docker, spec.Name)
	if err != nil || len(ids) == 0 {
		t.Fatalf("the kill left no node container (%v): the fault was not reproduced\n%s", err, childOut.String())
	}
	engine, err := engineID(ctx, docker)
	if err != nil {
		t.Fatal(err)
	}
	recs := newRecords(job.StateDir)
	if rec, err := recs.read(engine, spec.Name); err != nil || rec == nil || rec.State != recCreating {
		t.Fatalf("record after the kill: %+v, %v; want state %q", rec, err, recCreating)
	}

	// The recovering Ensure.
	var lines lockedBuffer
	opts := Options{Docker: docker, StateDir: job.StateDir, Log: log.New(io.MultiWriter(os.Stderr, &lines), testing.Verbose()).Slog()}
	if _, err := InstallPrivilegedShim(ctx, nodeImage, opts); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, res, err := Ensure(ctx, spec, opts)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Ensure after the kill: %v", err)
	}
	t.Logf("recovering Ensure: %s in %s", res, took.Round(100*time.Millisecond))
	fmt.Fprintf(os.Stderr, "timing: cluster recreate after a kill during create %s\n", took.Round(100*time.Millisecond))
	if res != Recreated {
		t.Errorf("Ensure after the kill: %s, want %s", res, Recreated)
	}
	want := "cluster " + spec.Name + " was left half-created (devenv was stopped while creating it): creating it again"
	if !strings.Contains(lines.String(), want) {
		t.Errorf("Ensure did not say %q; it said:\n%s", want, lines.String())
	}
	if rec, err := recs.read(engine, spec.Name); err != nil || rec == nil || rec.State != recComplete || rec.Node == "" {
		t.Errorf("record after the recovering Ensure: %+v, %v; want %q with the node", rec, err, recComplete)
	}

	// A pod schedules and runs (the half-created node kept its
	// control-plane taint, so nothing did).
	image := testImage(t, docker)
	if _, err := c.LoadImage(ctx, docker, image); err != nil {
		t.Fatal(err)
	}
	ns := "it-killed"
	if _, err := c.Apply(ctx, objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
`+echoApp(ns, "echo", image)), ApplyOptions{Selector: map[string]string{"devenv.dev/project": "it-killed"}}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := c.WaitRollout(ctx, ns, "echo", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("a pod ran on the recreated cluster after %s", time.Since(start).Round(100*time.Millisecond))

	// And the next Ensure reuses the complete cluster.
	if _, res, err := Ensure(ctx, spec, opts); err != nil || res != Reused {
		t.Errorf("Ensure of the complete cluster: %s, %v; want %s", res, err, Reused)
	}
}

// killedChild is the child's side: Ensure the cluster; the parent kills it
// during the create.
func killedChild(t *testing.T, jobJSON string) {
	var job killedJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := Options{StateDir: job.StateDir, Log: log.New(os.Stderr, false).Slog()}
	if _, err := InstallPrivilegedShim(ctx, job.Spec.Image, opts); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Ensure(ctx, job.Spec, opts); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
