package devenvtest_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

// kindClusterLabel is the label kind puts on a cluster's node containers.
const kindClusterLabel = "io.x-k8s.kind.cluster"

// TestIntegrationTwoBinaries runs examples/harness's test binary twice at
// the same moment, as two packages' tests do under go test: both must pass
// on one environment (one brings it up or reuses it, the other attaches or
// waits), and afterwards the project has one cluster and one Kafka
// container. It uses the cosmos project of the repository's devenv.yaml and
// leaves it running when it was running before; one it created it removes.
func TestIntegrationTwoBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: brings up (or reuses) the cosmos environment from two processes")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	cfg, err := config.Load("../devenv.yaml")
	if err != nil {
		t.Fatal(err)
	}

	// Left running when it ran before (a developer's environment); removed
	// at the end when this test created it (CI: the next packages' tests
	// get the machine's cores back).
	before, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", kindClusterLabel+"="+cfg.Cluster.Name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Items) == 0 {
		t.Cleanup(func() {
			if err := devenv.Down(context.Background(), cfg, devenv.DownOptions{}); err != nil {
				t.Errorf("down: %v", err)
			}
		})
	}

	harness, err := filepath.Abs("../examples/harness")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "harness.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, ".")
	build.Dir = harness
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the harness test binary: %v\n%s", err, out)
	}

	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	begin := make(chan struct{})
	for i := range 2 {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, bin, "-test.run", "^TestIntegrationTransfer$", "-test.v", "-test.count=1", "-test.timeout=25m")
			cmd.Dir = harness // the test names ../../devenv.yaml
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			<-begin
			errs[i] = cmd.Run()
		})
	}
	t0 := time.Now()
	close(begin)
	wg.Wait()
	t.Logf("both binaries ended after %s", time.Since(t0).Round(100*time.Millisecond))
	for i := range 2 {
		out := outs[i].String()
		if errs[i] != nil || !strings.Contains(out, "--- PASS: TestIntegrationTransfer") {
			t.Errorf("binary %d: %v\n%s", i+1, errs[i], out)
		} else {
			t.Logf("binary %d passed:\n%s", i+1, out)
		}
	}

	count := func(what string, labels ...string) {
		t.Helper()
		res, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", labels...)})
		if err != nil {
			t.Fatalf("listing %s containers: %v", what, err)
		}
		if len(res.Items) != 1 {
			var names []string
			for _, c := range res.Items {
				names = append(names, strings.Join(c.Names, ","))
			}
			t.Errorf("%d %s containers (%v), want 1", len(res.Items), what, names)
		}
	}
	count("cluster node", kindClusterLabel+"="+cfg.Cluster.Name)
	count("Kafka", project.ID{Name: cfg.Name}.Selector(kafka.Component)...)
}
