package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/project"
)

// engine29Env names the second engine's socket; `make engine29` sets it
// (scripts/engine29.sh env) and runs this test in that engine's network
// namespace. engine29BundleEnv is the bundle to load into it first.
const (
	engine29Env       = "DEVENV_ENGINE29_HOST"
	engine29BundleEnv = "DEVENV_ENGINE29_BUNDLE"
)

// heredocDockerfile needs BuildKit: a RUN heredoc and COPY --chmod, in a
// multi-stage build whose first stage starts from the node image (the one
// image with a shell that a fresh engine has after the bundle). No syntax
// line: the engine's built-in Dockerfile frontend is used, nothing pulled.
const heredocDockerfile = `FROM ` + testenv.NodeImage + ` AS prep
RUN <<EOF
set -e
mkdir -p /out
echo "written by a RUN heredoc" > /out/heredoc.txt
EOF
FROM scratch
COPY --from=prep /out/heredoc.txt /heredoc.txt
COPY --chmod=0755 probe /probe
ENTRYPOINT ["/probe"]
`

// TestIntegrationEngine29 is the smoke test against a current Docker engine
// (Engine 29, containerd image store) that scripts/engine29.sh runs beside
// the machine's own: the bundle made from the first engine is loaded, a
// one-service Go project on Kafka comes up (cold: a kind cluster of its
// own), a saved change is updated in place while up watches, a service
// whose Dockerfile needs BuildKit (RUN heredoc, COPY --chmod) comes up, and
// down leaves nothing labelled on the engine. The figures (load, cold up)
// go to the test log as "engine29:" lines.
//
// Skipped when DEVENV_ENGINE29_HOST is unset, except in CI (CI=true), where
// that is a failure: `make engine29` must have set it.
func TestIntegrationEngine29(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	host := os.Getenv(engine29Env)
	if host == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset: run this test through `make engine29`", engine29Env)
		}
		t.Skipf("%s is unset: run `make engine29` (scripts/engine29.sh starts the engine)", engine29Env)
	}
	// Never the first engine: every Docker call of devenv and of this test
	// goes to the second one.
	t.Setenv("DOCKER_HOST", host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	ver, err := docker.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	major, _, _ := strings.Cut(ver.Version, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 29 {
		t.Fatalf("%s is Docker Engine %s, want 29 or newer", host, ver.Version)
	}
	// kind runs the docker CLI: it must be one the engine accepts.
	cliVer, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Client.Version}}").Output()
	if err != nil {
		t.Fatalf("docker CLI against %s: %v", host, err)
	}
	t.Logf("engine29: server %s (API %s), docker CLI %s", ver.Version, ver.APIVersion, strings.TrimSpace(string(cliVer)))
	t.Setenv(dirs.StateEnv, t.TempDir())

	devenv := func(ctx context.Context, args ...string) (int, string, string) { return runDevenv(ctx, t, args...) }

	if file := os.Getenv(engine29BundleEnv); file != "" {
		code, out, errOut := devenv(ctx, "images", "load", "-o", "json", file)
		if code != ExitOK {
			t.Fatalf("images load %s: exit %d: %s", file, code, errOut)
		}
		var load imagesLoadResult
		if err := json.Unmarshal([]byte(out), &load); err != nil {
			t.Fatalf("images load -o json: %v\n%s", err, out)
		}
		t.Logf("engine29: bundle %s: %.1f MB, %d images loaded in %.1fs", filepath.Base(file), float64(load.Size)/1e6, len(load.Images), load.Seconds)
	}
	testenv.RequireImages(t, docker)

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "project")
	name := testenv.Name("e29-")
	if code, _, errOut := devenv(ctx, "init", "--lang", "go", "--name", name, dir); code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	cfgArgs := []string{"-f", filepath.Join(dir, "devenv.yaml"), "--kubeconfig", filepath.Join(tmp, "kubeconfig")}
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			if code, _, errOut := devenv(context.Background(), append([]string{"down"}, cfgArgs...)...); code != ExitOK {
				t.Errorf("down: exit %d: %s", code, errOut)
			}
		}
		testenv.RemoveImages(t, docker, project.LabelProject+"="+name)
	})

	t0 := time.Now()
	if code, _, errOut := devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...); code != ExitOK {
		t.Fatalf("cold up --no-watch: exit %d: %s", code, errOut)
	}
	t.Logf("engine29: cold up (kind cluster, Kafka, publisher) %s", time.Since(t0).Round(100*time.Millisecond))
	requireStatusReady(ctx, t, devenv, cfgArgs, "publisher")

	t.Run("live-update", func(t *testing.T) {
		wctx, stop := context.WithCancel(ctx)
		watchOut := &testenv.Log{TB: t}
		ended := make(chan int, 1)
		go func() {
			ended <- Run(wctx, append([]string{"up", "--ui=false"}, cfgArgs...), Streams{In: strings.NewReader(""), Out: watchOut, Err: watchOut})
		}()
		defer func() { stop(); <-ended }()
		waitForOutput(ctx, t, watchOut, ended, "watching 1 services", 3*time.Minute)
		version := filepath.Join(dir, "publisher", "version.go")
		src, err := os.ReadFile(version)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(version, []byte(strings.Replace(string(src), `"v1"`, `"v2"`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		waitForOutput(ctx, t, watchOut, ended, "publisher ✓", 3*time.Minute)
		if !strings.Contains(watchOut.String(), "(updated in place)") {
			t.Errorf("the save was not updated in place:\n%s", watchOut.String())
		}
	})

	// An image the engine builds through BuildKit (devenv assembles FROM
	// scratch + COPY images itself; a RUN needs the engine). Needs devenv's
	// BuildKit builds: with the classic builder, the heredoc fails.
	t.Run("buildkit", func(t *testing.T) {
		svc := testenv.GoService(t, ctx, "../devenv/testdata/h2probe", filepath.Join(dir, "heredoc"), "probe")
		if err := os.WriteFile(filepath.Join(svc, "Dockerfile"), []byte(heredocDockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		yaml := filepath.Join(dir, "devenv.yaml")
		cfg, err := os.ReadFile(yaml)
		if err != nil {
			t.Fatal(err)
		}
		cfg = append(cfg, []byte("  heredoc:\n    context: ./heredoc\n    port: 8080\n")...)
		if err := os.WriteFile(yaml, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...); code != ExitOK {
			t.Fatalf("up --no-watch with the heredoc service: exit %d: %s", code, errOut)
		}
		requireStatusReady(ctx, t, devenv, cfgArgs, "heredoc")

		// Layer skipping: a new probe binary (bytes appended to an ELF file
		// do not change what it runs) rebuilds the image; the heredoc
		// stage's layer is the same, and the push must not send it again.
		bin := filepath.Join(svc, "probe")
		f, err := os.OpenFile(bin, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write([]byte("\x00devenv engine29 test\x00"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...)
		if code != ExitOK {
			t.Fatalf("up --no-watch after the binary changed: exit %d: %s", code, errOut)
		}
		pushed := regexp.MustCompile(`pushed \S*heredoc\S*: (\d+) blobs uploaded \([^)]*\), (\d+) already there`).FindStringSubmatch(out + errOut)
		if pushed == nil {
			t.Fatalf("no push line for the heredoc image after its binary changed:\n%s%s", out, errOut)
		}
		if pushed[2] == "0" {
			t.Errorf("the push after a one-layer change skipped no blob: %s", pushed[0])
		}
		t.Logf("engine29: engine-built image, one layer changed: %s", pushed[0])
		requireStatusReady(ctx, t, devenv, cfgArgs, "heredoc")
	})

	if code, _, errOut := devenv(ctx, append([]string{"down"}, cfgArgs...)...); code != ExitOK {
		t.Fatalf("down: exit %d: %s", code, errOut)
	}
	downDone = true
	for _, f := range []string{kindClusterLabel + "=" + name, project.LabelProject + "=" + name} {
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

// requireStatusReady fails t unless devenv status shows svc ready.
func requireStatusReady(ctx context.Context, t *testing.T, devenv func(context.Context, ...string) (int, string, string), cfgArgs []string, svc string) {
	t.Helper()
	code, out, errOut := devenv(ctx, append([]string{"status"}, cfgArgs...)...)
	if code != ExitOK {
		t.Fatalf("status: exit %d (not ready): %s%s", code, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^.*\b` + svc + `\b.*1/1 ready`).MatchString(out) {
		t.Errorf("status does not show %s ready:\n%s", svc, out)
	}
}
