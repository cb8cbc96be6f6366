package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/testenv"
)

// fsEntry is what a test compares of one file in an image.
type fsEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Sum      string
}

// imageFS lists an image's files (through a created, never started
// container), without the files the engine adds to every container.
func imageFS(t *testing.T, docker *client.Client, ref string) map[string]fsEntry {
	t.Helper()
	ctx := context.Background()
	c, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{Image: ref})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", ref, err)
	}
	defer docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	rc, err := docker.ContainerExport(ctx, c.ID, client.ContainerExportOptions{})
	if err != nil {
		t.Fatalf("exporting %s: %v", ref, err)
	}
	defer rc.Close()
	out := map[string]fsEntry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch {
		case name == ".dockerenv", name == "dev", name == "proc", name == "sys", name == "etc",
			strings.HasPrefix(name, "dev/"), strings.HasPrefix(name, "proc/"), strings.HasPrefix(name, "sys/"),
			name == "etc/hostname", name == "etc/hosts", name == "etc/resolv.conf", name == "etc/mtab":
			continue
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		out[name] = fsEntry{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Link: h.Linkname, Sum: hex.EncodeToString(sum.Sum(nil))[:12]}
	}
	return out
}

// TestIntegrationAssembleMatchesEngine builds the same simple Dockerfile
// with the engine's builder and with devenv's assembler and compares the
// two images' files and configuration.
func TestIntegrationAssembleMatchesEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images with the real Docker engine; skipped with -short")
	}
	docker := connect(t)
	ctx := context.Background()
	project := fmt.Sprintf("itest%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { testenv.RemoveImages(t, docker, LabelProject+"="+project) })

	// A root file system with folders whose mode and owner a layer must
	// not reset: /tmp (1777) and /srv/data (0750, owned by 1000).
	root := importRoot(t, docker, project)
	// A base image built by the engine, with configuration to inherit.
	baseDir := t.TempDir()
	goApp(t, baseDir)
	writeFile(t, filepath.Join(baseDir, "Dockerfile"), "FROM "+root+"\nCOPY app /bin/app\nENV A=1 PATH=/bin\nWORKDIR /srv\nEXPOSE 7000\nLABEL base=yes\nCMD [\"base-cmd\"]\n")
	base, err := Image(ctx, docker, Spec{Service: "base", Project: project, Context: baseDir}, ImageOptions{Engine: true})
	if err != nil {
		t.Fatal(err)
	}
	if base.Assembled != nil {
		t.Fatal("ImageOptions.Engine did not use the engine")
	}

	dir := t.TempDir()
	goApp(t, dir)
	writeFile(t, filepath.Join(dir, "data.txt"), "data")
	writeFile(t, filepath.Join(dir, "more.txt"), "more")
	writeFile(t, filepath.Join(dir, "conf", "app.conf"), "x=1")
	writeFile(t, filepath.Join(dir, "conf", "deep", "d.conf"), "d")
	if err := os.WriteFile(filepath.Join(dir, "conf", "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app.conf", filepath.Join(dir, "conf", "link.conf")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secret.md"), "not sent")
	writeFile(t, filepath.Join(dir, ".dockerignore"), "*.md\n.dockerignore\nDockerfile\n")
	writeFile(t, filepath.Join(dir, "Dockerfile"), strings.Join([]string{
		"# a comment",
		"ARG BASE=none",
		"FROM ${BASE}",
		"ENV B=2 A=override \\",
		"    C=\"with space\"",
		"WORKDIR app/",
		"COPY data.txt conf/ ./",
		"COPY app /usr/local/bin/tool",
		"COPY *.txt /opt/texts/",
		"COPY . /all/",
		"COPY more.txt /bin",               // a folder of the base: into it
		"COPY conf/app.conf /opt/texts",    // a folder an earlier COPY made
		"COPY data.txt /opt/texts/renamed", // a new name
		"COPY app /tmp/app",                // under a folder of the base: /tmp stays 1777
		"COPY more.txt /srv/data/sub/",     // /srv/data keeps its owner and mode
		"WORKDIR /tmp",                     // exists: unchanged
		"WORKDIR /srv/data/w",              // made inside a folder of the base
		"WORKDIR /var/empty/x",
		"USER 1000:1000",
		"EXPOSE 8080 9090/udp",
		"LABEL a=b c=\"d e\"",
		`ENTRYPOINT ["/usr/local/bin/tool", "--serve"]`,
		"",
	}, "\n"))
	args := map[string]string{"BASE": base.Ref}
	engine, err := Image(ctx, docker, Spec{Service: "engine", Project: project, Context: dir, Args: args}, ImageOptions{Engine: true})
	if err != nil {
		t.Fatal(err)
	}
	asm, err := Image(ctx, docker, Spec{Service: "engine", Project: project, Context: dir, Args: args}, ImageOptions{Output: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	if asm.Assembled == nil {
		t.Fatal("the simple Dockerfile was not assembled")
	}
	t.Logf("engine build %v, assembled %v", engine.Duration, asm.Duration)

	gotFS, wantFS := imageFS(t, docker, asm.Ref), imageFS(t, docker, engine.Ref)
	t.Logf("%d files compared", len(wantFS))
	for name, want := range wantFS {
		if got, ok := gotFS[name]; !ok {
			t.Errorf("%s: missing from the assembled image (engine: %+v)", name, want)
		} else if got != want {
			t.Errorf("%s: assembled %+v, engine %+v", name, got, want)
		}
	}
	for name, got := range gotFS {
		if _, ok := wantFS[name]; !ok {
			t.Errorf("%s: only in the assembled image (%+v)", name, got)
		}
	}
	if e := gotFS["tmp"]; e.Mode != 0o1777 || e.UID != 0 {
		t.Errorf("tmp: assembled %+v, want 1777 owned by root", e)
	}
	if e := gotFS["srv/data"]; e.Mode != 0o750 || e.UID != 1000 || e.GID != 1000 {
		t.Errorf("srv/data: assembled %+v, want 0750 owned by 1000:1000", e)
	}
	if _, ok := gotFS["all/secret.md"]; ok {
		t.Error(".dockerignore'd secret.md was copied")
	}

	gi, err := docker.ImageInspect(ctx, asm.Ref)
	if err != nil {
		t.Fatal(err)
	}
	wi, err := docker.ImageInspect(ctx, engine.Ref)
	if err != nil {
		t.Fatal(err)
	}
	g, w := gi.Config, wi.Config
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Entrypoint", g.Entrypoint, w.Entrypoint},
		{"Cmd", g.Cmd, w.Cmd},
		{"Env", g.Env, w.Env},
		{"WorkingDir", g.WorkingDir, w.WorkingDir},
		{"User", g.User, w.User},
		{"ExposedPorts", g.ExposedPorts, w.ExposedPorts},
		{"Labels", g.Labels, w.Labels},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("config %s: assembled %v, engine %v", f.name, f.got, f.want)
		}
	}
	if gi.Architecture != wi.Architecture || gi.Os != wi.Os {
		t.Errorf("platform: assembled %s/%s, engine %s/%s", gi.Os, gi.Architecture, wi.Os, wi.Architecture)
	}

	// The same inputs give the same image: nothing to deploy.
	again, err := Image(ctx, docker, Spec{Service: "engine", Project: project, Context: dir, Args: args}, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Ref != asm.Ref || !again.Cached {
		t.Errorf("unchanged inputs: %s cached %v, want %s cached", again.Ref, again.Cached, asm.Ref)
	}
	writeFile(t, filepath.Join(dir, "data.txt"), "changed")
	changed, err := Image(ctx, docker, Spec{Service: "engine", Project: project, Context: dir, Args: args}, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if changed.Ref == asm.Ref || changed.Cached {
		t.Errorf("changed file: %s cached %v, want a new image", changed.Ref, changed.Cached)
	}

	// A missing COPY source is named with the Dockerfile's line.
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY nothing/*.jar /app/\n")
	_, err = Image(ctx, docker, Spec{Service: "engine", Project: project, Context: dir}, ImageOptions{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "Dockerfile")+":2: COPY nothing/*.jar") {
		t.Errorf("missing COPY source: err = %v, want the Dockerfile's line named", err)
	}
}

// importRoot imports a root file system holding /tmp (mode 1777) and
// /srv/data (mode 0750, owned by 1000:1000) as an image labelled for
// project, and returns its reference.
func importRoot(t *testing.T, docker *client.Client, project string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "srv/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "srv/data/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ref := "devenv.local/it-root:" + project
	res, err := docker.ImageImport(context.Background(), client.ImageImportSource{Source: &buf, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{"LABEL " + LabelProject + "=" + project}})
	if err != nil {
		t.Fatalf("importing a root file system: %v", err)
	}
	_, _ = io.Copy(io.Discard, res)
	_ = res.Close()
	return ref
}
