package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationFaultKillDuringUp kills `devenv up` (SIGKILL, as an OOM
// killer or a closed laptop would) in each of its phases, one after the
// other on one project: while the cluster is being created, while an image
// is built, while it is loaded, while the objects are applied and while
// the rollout is awaited (each round after the first changes the image, so
// that every phase has work). After each kill a second `up` must converge
// (exit 0, every service ready), and the project must have exactly one
// node container, one Kafka container and one Kafka volume. Then a node
// container is killed (`docker kill`) and `up` must recover again. Last,
// `down` must leave no container, volume or cluster of the project. Each
// recovering up's duration is printed as "fault: ...".
func TestIntegrationFaultKillDuringUp(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: kills devenv up at each phase")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "devenv")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/devenv").CombinedOutput(); err != nil {
		t.Fatalf("building devenv: %v\n%s", err, out)
	}
	svc := testenv.GoService(t, ctx, "../devenv/testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-fault-")
	file := filepath.Join(tmp, "devenv.yaml")
	// registry: none: the image phase is a load into the node (the fault
	// this test kills in), and the project's only container is Kafka's.
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
registry: none
kafka: {topics: [faults]}
services:
  probe:
    context: ./probe
    port: 8080
`, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			opts := devenv.DownOptions{Options: devenv.Options{Kubeconfig: kubeconfig}}
			if err := devenv.Down(context.Background(), cfg, opts); err != nil {
				t.Errorf("down: %v", err)
			}
		}
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})
	args := []string{"up", "--no-watch", "-f", file, "--kubeconfig", kubeconfig}

	// converge runs up to the end and checks what the project has.
	converge := func(after string) {
		t.Helper()
		start := time.Now()
		cmd := exec.CommandContext(ctx, bin, args...)
		out, err := cmd.CombinedOutput()
		took := time.Since(start).Round(100 * time.Millisecond)
		if err != nil {
			t.Fatalf("up after %s: %v\n%s", after, err, out)
		}
		fmt.Fprintf(os.Stderr, "fault: %s: the next up converged in %s\n", after, took)
		t.Logf("up after %s: converged in %s", after, took)
		count := func(kind string, n int, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("listing %s: %v", kind, err)
			}
			if n != 1 {
				t.Errorf("after %s: %d %s, want 1", after, n, kind)
			}
		}
		nodes, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", kindClusterLabel+"="+cfg.Cluster.Name)})
		count("node containers", len(nodes.Items), err)
		owned, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", project.LabelProject+"="+name)})
		count("Kafka containers", len(owned.Items), err)
		vols, err := docker.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", project.LabelProject+"="+name)})
		count("volumes", len(vols.Items), err)
	}

	phases := []struct{ name, marker string }{
		{"cluster creation", "Preparing nodes"},
		{"image build", "probe: image ..."},
		{"image load", "into the cluster ..."},
		{"apply", "applying "},
		{"rollout", "probe: rollout ..."},
	}
	for i, p := range phases {
		if i > 0 {
			// A new image for this round: the phases after the build all
			// have work to do.
			df := fmt.Sprintf("FROM scratch\nENV FAULT_ROUND=%d\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n", i)
			if err := os.WriteFile(filepath.Join(svc, "Dockerfile"), []byte(df), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		last, killed := killAt(ctx, t, bin, args, p.marker)
		if !killed {
			t.Errorf("up finished before it reached %q (%s); last line %q", p.marker, p.name, last)
		}
		converge("kill -9 during " + p.name)
	}

	nodes, err := docker.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", kindClusterLabel+"="+cfg.Cluster.Name)})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("no node container to kill: %v", err)
	}
	if _, err := docker.ContainerKill(ctx, nodes.Items[0].ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	converge("docker kill of the node container")

	down := exec.CommandContext(ctx, bin, "down", "-f", file, "--kubeconfig", kubeconfig)
	if out, err := down.CombinedOutput(); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	downDone = true
	for _, f := range []string{kindClusterLabel + "=" + cfg.Cluster.Name, project.LabelProject + "=" + name} {
		left, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", f)})
		if err != nil || len(left.Items) != 0 {
			t.Errorf("after down, containers labelled %s: %d (%v)", f, len(left.Items), err)
		}
	}
	vols, err := docker.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", project.LabelProject+"="+name)})
	if err != nil || len(vols.Items) != 0 {
		t.Errorf("after down, volumes of the project: %d (%v)", len(vols.Items), err)
	}
}

// kindClusterLabel is the label kind puts on a cluster's node containers.
const kindClusterLabel = "io.x-k8s.kind.cluster"

// killAt runs devenv with args and kills it (SIGKILL) as soon as a line of
// its output contains marker. It returns the last line read and whether
// the process was killed (false: it ended before the marker).
func killAt(ctx context.Context, t *testing.T, bin string, args []string, marker string) (last string, killed bool) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		last = sc.Text()
		if !killed && strings.Contains(last, marker) {
			if err := cmd.Process.Kill(); err == nil {
				killed = true
				t.Logf("killed up at %q", last)
			}
		}
	}
	<-done
	return last, killed
}
