package kindnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/images/debian"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
)

// TestIntegrationBuildNodeImage builds the Debian base and the node image
// (unless images with the current recipes exist) with the cache in
// $DEVENV_CACHE (default /var/cache/devenv), then checks the node image.
// A cold build takes about 20 minutes on 2 cores:
//
//	go test -run TestIntegrationBuildNodeImage -timeout 60m -v ./internal/images/kindnode/
func TestIntegrationBuildNodeImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kind node image from source (about 20 minutes); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if errors.Is(err, dockerx.ErrNoDaemon) {
		t.Skipf("needs Docker: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	cache := os.Getenv("DEVENV_CACHE")
	if cache == "" {
		cache = "/var/cache/devenv"
	}
	var (
		current string
		started time.Time
		total   = time.Now()
	)
	done := func() {
		if current != "" {
			fmt.Fprintf(os.Stderr, "=== step done in %s: %s\n", time.Since(started).Round(time.Second), current)
		}
	}
	env := &standin.Env{
		Docker:   docker,
		Log:      log.New(os.Stderr, true),
		CacheDir: cache,
		Step: func(s string) {
			done()
			current, started = s, time.Now()
			fmt.Fprintf(os.Stderr, "=== step: %s\n", s)
		},
		Output: os.Stderr,
	}
	for _, si := range []standin.StandIn{debian.StandIn(), StandIn()} {
		ensure(ctx, t, env, si)
		done()
		current = ""
	}
	fmt.Fprintf(os.Stderr, "=== all built in %s\n", time.Since(total).Round(time.Second))

	si := StandIn()
	parts, err := si.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	img, err := docker.ImageInspect(ctx, si.Ref)
	if err != nil {
		t.Fatalf("inspecting %s: %v", si.Ref, err)
	}
	for k, v := range si.Labels(standin.Hash(parts)) {
		if got := img.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if want := []string{"/usr/local/bin/entrypoint", "/sbin/init"}; !slices.Equal(img.Config.Entrypoint, want) {
		t.Errorf("entrypoint = %q, want %q", img.Config.Entrypoint, want)
	}
	if img.Config.StopSignal != "SIGRTMIN+3" {
		t.Errorf("stop signal = %q, want SIGRTMIN+3", img.Config.StopSignal)
	}
	fmt.Fprintf(os.Stderr, "=== %s: %d MB\n", si.Ref, img.Size/1e6)

	version := runIn(ctx, t, si.Ref, "/usr/bin/kubeadm", "version", "-o", "short")
	if strings.TrimSpace(version) != KubernetesVersion {
		t.Errorf("kubeadm version -o short = %q, want %s", version, KubernetesVersion)
	}
	wantImages := strings.Fields(runIn(ctx, t, si.Ref, "/usr/bin/kubeadm", "config", "images", "list", "--kubernetes-version", KubernetesVersion))
	listed := strings.Fields(runIn(ctx, t, si.Ref, "bash", "-c",
		`containerd >/tmp/containerd.log 2>&1 & for i in $(seq 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done; ctr -n k8s.io images ls -q`))
	for _, w := range append(wantImages, "registry.k8s.io/pause:3.10") {
		if !slices.Contains(listed, w) {
			t.Errorf("image %s is not preloaded in the node's containerd; it has %q", w, listed)
		}
	}
}

// ensure builds si unless its image exists with the current recipe.
func ensure(ctx context.Context, t *testing.T, env *standin.Env, si standin.StandIn) {
	t.Helper()
	parts, err := si.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	hash := standin.Hash(parts)
	if img, err := env.Docker.ImageInspect(ctx, si.Ref); err == nil && img.Config != nil && img.Config.Labels[standin.LabelRecipe] == hash {
		fmt.Fprintf(os.Stderr, "=== %s is current (recipe %s)\n", si.Ref, hash)
		return
	}
	if err := si.Build(ctx, env, si.Labels(hash)); err != nil {
		t.Fatalf("building %s: %v", si.Ref, err)
	}
}

// runIn runs a command in a throwaway container of image and returns its output.
func runIn(ctx context.Context, t *testing.T, image string, args ...string) string {
	t.Helper()
	cmd := append([]string{"docker", "run", "--rm", "--entrypoint", args[0], image}, args[1:]...)
	out, err := execx.Output(ctx, execx.Cmd{Args: cmd})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
