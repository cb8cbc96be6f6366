package build

import (
	"archive/tar"
	"bytes"
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

// TestIntegrationLoadLeavesOutWhatDockerHas: a rebuilt image goes to
// Docker without the layers (chains) this process loaded before, and a
// layer removed from Docker meanwhile is sent again.
func TestIntegrationLoadLeavesOutWhatDockerHas(t *testing.T) {
	if testing.Short() {
		t.Skip("loads images into the real Docker engine; skipped with -short")
	}
	docker := connect(t)
	ctx := context.Background()
	project := fmt.Sprintf("itest%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { testenv.RemoveImages(t, docker, LabelProject+"="+project) })

	dir := t.TempDir()
	for i := range 200 {
		writeFile(t, filepath.Join(dir, "data", fmt.Sprintf("f%03d.txt", i)), fmt.Sprint(i))
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY data /data\nCMD [\"/none\"]\n")
	spec := Spec{Service: "many", Project: project, Context: dir}
	st, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st.chunkMin = 16 // the COPY cut into several layers
	build := func(what string) Result {
		t.Helper()
		res, err := Image(ctx, docker, spec, ImageOptions{State: st})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		in, err := docker.ImageInspect(ctx, res.Ref)
		if err != nil {
			t.Fatalf("%s: %s not in Docker: %v", what, res.Ref, err)
		}
		if got, want := strings.Join(in.RootFS.Layers, " "), strings.Join(diffIDs(res.Assembled), " "); got != want {
			t.Errorf("%s: Docker's layers %s, want %s", what, got, want)
		}
		return res
	}
	leftOut := func() int { st.mu.Lock(); defer st.mu.Unlock(); return st.leftOut }

	first := build("first build")
	if n := len(first.Assembled.Layers); n < 4 {
		t.Fatalf("%d layers, want several", n)
	}
	if leftOut() != 0 {
		t.Errorf("the first load left out %d layers", leftOut())
	}
	writeFile(t, filepath.Join(dir, "data", "f199.txt"), "changed")
	second := build("one file changed")
	if n := leftOut(); n == 0 || n >= len(second.Assembled.Layers) {
		t.Errorf("the second load left out %d of %d layers, want all below the changed one", n, len(second.Assembled.Layers))
	}
	if got := fileIn(t, ctx, docker, second.Ref, "/data/f199.txt"); got != "changed" {
		t.Errorf("/data/f199.txt in Docker's image = %q", got)
	}

	// Another process (a new State) finds the image in Docker: its next
	// load leaves out the layers of that one.
	st2, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st2.chunkMin = 16
	if res, err := Image(ctx, docker, spec, ImageOptions{State: st2}); err != nil || !res.Cached || res.Ref != second.Ref {
		t.Fatalf("the same image in a new process: %+v, %v; want %s, cached", res, err, second.Ref)
	}
	writeFile(t, filepath.Join(dir, "data", "f199.txt"), "changed in another process")
	other, err := Image(ctx, docker, spec, ImageOptions{State: st2})
	if err != nil {
		t.Fatal(err)
	}
	st2.mu.Lock()
	if st2.leftOut == 0 {
		t.Error("a new process sent every layer of an image whose base layers Docker had")
	}
	st2.mu.Unlock()

	// The images removed behind the process's back: the next load that
	// leaves their layers out fails, and the whole one goes.
	for _, ref := range []string{first.Ref, second.Ref, other.Ref} {
		if _, err := docker.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "data", "f199.txt"), "changed again")
	third := build("after the images were removed")
	if got := fileIn(t, ctx, docker, third.Ref, "/data/f000.txt"); got != "0" {
		t.Errorf("/data/f000.txt in Docker's image = %q", got)
	}
	st.mu.Lock()
	refused := st.partialRefused
	st.mu.Unlock()
	if refused != 1 {
		t.Errorf("archives refused: %d, want 1", refused)
	}
}

// fileIn reads file p of image ref, through a container made (not run)
// of it.
func fileIn(t *testing.T, ctx context.Context, docker *client.Client, ref, p string) string {
	t.Helper()
	c, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{Image: ref})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", ref, err)
	}
	defer docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	rc, err := docker.CopyFromContainer(ctx, c.ID, client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		t.Fatalf("reading %s from %s: %v", p, ref, err)
	}
	defer rc.Content.Close()
	tr := tar.NewReader(rc.Content)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
