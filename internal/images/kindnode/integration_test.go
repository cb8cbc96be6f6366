package kindnode_test

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
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/images/kindnode"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationBuildNodeImage builds the Debian base and the node image
// through the stand-in framework (unless they are current), then checks the
// node image.
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
	// Through the framework, as devenv images build does: the same recipe
	// (which includes debian-base's) and the same cache folder, so the CLI
	// and this test never rebuild each other's image.
	t0 := time.Now()
	if err := images.Build(ctx, docker, images.BuildOptions{Only: []string{"kind-node"}, Out: os.Stderr, Log: log.New(os.Stderr, false)}); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "=== built or found current in %s\n", time.Since(t0).Round(time.Second))

	si := kindnode.StandIn()
	img, err := docker.ImageInspect(ctx, si.Ref)
	if err != nil {
		t.Fatalf("inspecting %s: %v", si.Ref, err)
	}
	// An image built before the label rename carries dev.devenv.* keys,
	// which devenv still reads (project.ImageLabel).
	for _, k := range []string{standin.LabelName, standin.LabelFor, standin.LabelRecipe} {
		got := project.ImageLabel(img.Config.Labels, k)
		if got == "" || (k != standin.LabelRecipe && got != si.Labels("")[k]) {
			t.Errorf("label %s = %q, want %q", k, got, si.Labels("")[k])
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
	if strings.TrimSpace(version) != kindnode.KubernetesVersion {
		t.Errorf("kubeadm version -o short = %q, want %s", version, kindnode.KubernetesVersion)
	}
	wantImages := strings.Fields(runIn(ctx, t, si.Ref, "/usr/bin/kubeadm", "config", "images", "list", "--kubernetes-version", kindnode.KubernetesVersion))
	listed := strings.Fields(runIn(ctx, t, si.Ref, "bash", "-c",
		`containerd >/tmp/containerd.log 2>&1 & for i in $(seq 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done; ctr -n k8s.io images ls -q`))
	for _, w := range append(wantImages, "registry.k8s.io/pause:3.10") {
		if !slices.Contains(listed, w) {
			t.Errorf("image %s is not preloaded in the node's containerd; it has %q", w, listed)
		}
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
