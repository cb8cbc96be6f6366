package kindnode

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/images/debian"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// TestIntegrationDockerPlumbing checks the Docker API paths of the node build
// (copy into a container, exec with exit codes, build FROM scratch, save) in
// seconds, on the Debian base image.
func TestIntegrationDockerPlumbing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Skipf("needs Docker: %v", err)
	}
	defer docker.Close()
	if _, err := docker.ImageInspect(ctx, debian.Ref); err != nil {
		t.Skipf("needs %s (built by TestIntegrationBuildNodeImage): %v", debian.Ref, err)
	}
	b := &builder{env: &standin.Env{Docker: docker}, root: t.TempDir()}

	created, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "devenv-test-kindnode-plumbing",
		Config:     &container.Config{Image: debian.Ref, Entrypoint: []string{"sleep", "infinity"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = docker.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.copyIn(ctx, created.ID, []tarEntry{{name: "opt/devenv/hello", mode: 0o755, data: []byte("#!/bin/sh\necho hello \"$@\"\n")}}); err != nil {
		t.Fatal(err)
	}
	out, err := b.exec(ctx, created.ID, "/opt/devenv/hello", "world")
	if err != nil || out != "hello world\n" {
		t.Errorf("exec = %q, %v", out, err)
	}
	_, err = b.exec(ctx, created.ID, "bash", "-c", "echo failing >&2; exit 3")
	var re *execx.RunError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "failing") {
		t.Errorf("want a RunError with exit status 3 and the output, got %v", err)
	}

	tarFile := filepath.Join(b.root, "img.tar")
	p := controlPlaneImage{ref: "registry.k8s.io/devenv-plumbing-test:v1", dockerfile: scratchDockerfile("/hello"),
		files: []tarEntry{{name: "bin", mode: 0o755, data: []byte("not really a binary")}}}
	if err := b.buildAndSave(ctx, p, tarFile); err != nil {
		t.Fatal(err)
	}
	if _, err := docker.ImageInspect(ctx, imagePrefix+p.ref); err == nil {
		t.Errorf("intermediate image %s was not removed", imagePrefix+p.ref)
	}
	f, err := os.Open(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "manifest.json" {
			m, _ := io.ReadAll(tr)
			found = strings.Contains(string(m), "devenv.local/registry.k8s.io/devenv-plumbing-test:v1")
		}
	}
	if !found {
		t.Error("saved tar has no manifest.json naming the image")
	}
}
