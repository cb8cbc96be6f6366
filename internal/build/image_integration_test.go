package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// goApp writes a tiny static Go program's binary to dir/app.
func goApp(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "go.mod"), "module app\n\ngo 1.22\n")
	writeFile(t, filepath.Join(src, "main.go"), "package main\n\nfunc main() { println(\"hello from devenv\") }\n")
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "app"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

func connect(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatalf("Docker is needed for this test: %v", err)
	}
	t.Cleanup(func() { docker.Close() })
	return docker
}

func TestIntegrationImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with the real Docker engine; skipped with -short")
	}
	docker := connect(t)
	ctx := context.Background()
	project := fmt.Sprintf("itest%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { testenv.RemoveImages(t, docker, LabelProject+"="+project) })

	dir := t.TempDir()
	goApp(t, dir)
	writeFile(t, filepath.Join(dir, "data.txt"), "v1")
	writeFile(t, filepath.Join(dir, "notes.md"), "ignored")
	writeFile(t, filepath.Join(dir, ".dockerignore"), "*.md\n")
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nARG GREETING=none\nLABEL greeting=$GREETING\nCOPY app data.txt /\nENTRYPOINT [\"/app\"]\n")
	spec := Spec{Service: "hello", Project: project, Context: dir, Args: map[string]string{"GREETING": "hi"}, Labels: map[string]string{"team": "x"}}

	var out bytes.Buffer
	first, err := Image(ctx, docker, spec, ImageOptions{Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first build: %s in %v", first.Ref, first.Duration)
	wantPrefix := "devenv.local/" + project + "-hello:"
	if !strings.HasPrefix(first.Ref, wantPrefix) || first.Ref != wantPrefix+strings.TrimPrefix(first.ID, "sha256:")[:12] {
		t.Errorf("ref %q does not follow %s<12 hex of %s>", first.Ref, wantPrefix, first.ID)
	}
	if first.Cached {
		t.Error("first build reported Cached")
	}
	// The legacy builder prints "Step 2/5 : ...", BuildKit's steps "#4 [2/5] ...".
	if !strings.Contains(out.String(), "[hello] Step ") && !strings.Contains(out.String(), "[hello] #") {
		t.Errorf("build output not streamed with the service prefix: %q", out.String())
	}
	insp, err := docker.ImageInspect(ctx, first.Ref)
	if err != nil {
		t.Fatalf("image %s not found after the build: %v", first.Ref, err)
	}
	labels := insp.Config.Labels
	if labels["greeting"] != "hi" || labels[LabelProject] != project || labels[LabelService] != "hello" || labels["team"] != "x" {
		t.Errorf("labels = %v: want the build arg, devenv's labels and the spec's", labels)
	}

	// Same inputs: same tag, nothing to deploy. Touching files changes nothing.
	now := time.Now()
	os.Chtimes(filepath.Join(dir, "data.txt"), now, now)
	writeFile(t, filepath.Join(dir, "notes.md"), "ignored, changed")
	second, err := Image(ctx, docker, spec, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second build: %s in %v (cached %v)", second.Ref, second.Duration, second.Cached)
	if second.Ref != first.Ref || !second.Cached {
		t.Errorf("unchanged inputs: ref %s cached %v, want %s cached true", second.Ref, second.Cached, first.Ref)
	}

	// A changed file: a new tag.
	writeFile(t, filepath.Join(dir, "data.txt"), "v2")
	third, err := Image(ctx, docker, spec, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("third build: %s in %v", third.Ref, third.Duration)
	if third.Ref == first.Ref || third.Cached {
		t.Errorf("changed input: ref %s cached %v, want a new tag", third.Ref, third.Cached)
	}

	// A changed build arg: a new tag as well.
	spec.Args = map[string]string{"GREETING": "hello"}
	fourth, err := Image(ctx, docker, spec, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fourth.Ref == third.Ref {
		t.Errorf("changed build arg kept tag %s", fourth.Ref)
	}
}

func TestIntegrationImageErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the real Docker engine; skipped with -short")
	}
	docker := connect(t)
	ctx := context.Background()
	project := fmt.Sprintf("itest%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { testenv.RemoveImages(t, docker, LabelProject+"="+project) })

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY missing.txt /\n")
	_, err := Image(ctx, docker, Spec{Service: "broken", Project: project, Context: dir}, ImageOptions{})
	if err == nil || !strings.Contains(err.Error(), `service "broken"`) || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("COPY of a missing file: err = %v, want the service and the file named", err)
	}
	t.Logf("missing COPY source:\n%v", err)

	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPPY app /\n")
	_, err = Image(ctx, docker, Spec{Service: "broken", Project: project, Context: dir}, ImageOptions{})
	if err == nil || !strings.Contains(err.Error(), `service "broken"`) || !strings.Contains(strings.ToLower(err.Error()), "coppy") {
		t.Errorf("Dockerfile syntax error: err = %v, want the service and the bad instruction named", err)
	}
	t.Logf("syntax error:\n%v", err)

	empty := t.TempDir()
	_, err = Image(ctx, docker, Spec{Service: "nodf", Project: project, Context: empty}, ImageOptions{})
	if err == nil || !strings.Contains(err.Error(), `service "nodf"`) || !strings.Contains(err.Error(), "Dockerfile "+filepath.Join(empty, "Dockerfile")+" not found") {
		t.Errorf("missing Dockerfile: err = %v", err)
	}
}
