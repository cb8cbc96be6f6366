package build

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/supervise"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// TestIntegrationLiveImageWithoutGo builds a live image through Docker
// with no go command in PATH: it carries the embedded supervisor for the
// engine's architecture.
func TestIntegrationLiveImageWithoutGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image with the real Docker engine; skipped with -short")
	}
	docker := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	project := fmt.Sprintf("itest%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { testenv.RemoveImages(t, docker, LabelProject+"="+project) })

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app"), "not run")
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n")
	t.Setenv("PATH", t.TempDir())

	res, err := Image(ctx, docker, Spec{Service: "live", Project: project, Context: dir}, ImageOptions{Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Assembled == nil || !res.Assembled.Live || res.NoLive != "" {
		t.Fatalf("assembled %v, no live update %q: want a live image", res.Assembled != nil, res.NoLive)
	}
	v, err := docker.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	insp, err := docker.ImageInspect(ctx, res.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if insp.Architecture != v.Arch {
		t.Errorf("image architecture %q, want the engine's %q", insp.Architecture, v.Arch)
	}
	if insp.Config == nil || len(insp.Config.Entrypoint) == 0 || insp.Config.Entrypoint[0] != supervise.Path {
		t.Errorf("entrypoint %v, want the supervisor first", insp.Config)
	}
}
