package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
)

// These integration tests need Docker but not the kind node image.

func TestIntegrationInstallPrivilegedShim(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker")
	}
	docker := testDocker(t)
	ctx := context.Background()
	const probeImage = "devenv.local/debian-base:bookworm"
	image := nodeImage
	if _, err := docker.ImageInspect(ctx, image); err != nil {
		image = probeImage
		if _, err := docker.ImageInspect(ctx, image); err != nil {
			t.Skipf("neither %s nor %s is built yet", nodeImage, probeImage)
		}
	}
	cache := t.TempDir()
	t.Setenv("DEVENV_CACHE", cache)
	t.Setenv("PATH", os.Getenv("PATH")) // restored after the test
	w, err := InstallPrivilegedShim(ctx, image, Options{Docker: docker, Log: log.New(os.Stderr, true).Slog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("privileged supported: %v", w.Supported)
	// The answer is remembered on disk for later runs (unless this process
	// had it already from an earlier test).
	if f := probeFile(ctx, docker); f != "" {
		if b, err := os.ReadFile(f); err == nil && string(b) != map[bool]string{true: "supported", false: "refused"}[w.Supported] {
			t.Errorf("remembered answer %q disagrees with %v", b, w.Supported)
		}
	}
	if !w.Supported {
		if w.ShimDir != filepath.Join(cache, "docker-shim") {
			t.Errorf("shim dir %q", w.ShimDir)
		}
		p, err := exec.LookPath("docker")
		if err != nil || p != filepath.Join(w.ShimDir, "docker") {
			t.Fatalf("docker in PATH is %q (%v), want the shim", p, err)
		}
		// The shim turns --privileged into something this engine accepts.
		out, err := exec.Command("docker", "run", "--rm", "--privileged", "--entrypoint", "true", image).CombinedOutput()
		if err != nil {
			t.Fatalf("privileged run through the shim: %v\n%s", err, out)
		}
	}
	res, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "devenv.dev/probe")})
	if err != nil || len(res.Items) != 0 {
		t.Errorf("probe containers left behind: %v %v", res.Items, err)
	}
}

func TestIntegrationEnsureNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker")
	}
	docker := testDocker(t)
	ctx := context.Background()
	_, existed, err := inspectNetwork(ctx, docker, NetworkName)
	if err != nil {
		t.Fatal(err)
	}
	n, err := EnsureNetwork(ctx, Options{Docker: docker, Log: log.New(os.Stderr, true).Slog()})
	if err != nil {
		t.Fatal(err)
	}
	if !existed {
		suite.netCreated = true // TestMain removes it if nothing uses it
		if !n.FixedIPs || !n.Subnet.IsValid() || !strings.HasPrefix(n.Subnet.String(), "172.") {
			t.Errorf("new network should have a fixed 172.x subnet: %+v", n)
		}
		raw, err := docker.NetworkInspect(ctx, NetworkName, client.NetworkInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if raw.Network.Labels[LabelOwned] != "true" || raw.Network.Options["com.docker.network.bridge.enable_ip_masquerade"] != "true" {
			t.Errorf("labels %v options %v", raw.Network.Labels, raw.Network.Options)
		}
	}
	again, err := EnsureNetwork(ctx, Options{Docker: docker})
	if err != nil || again != n {
		t.Errorf("second EnsureNetwork: %+v %v, want %+v", again, err, n)
	}
	if n.FixedIPs {
		taken, err := TakenIPs(ctx, docker, n)
		if err != nil {
			t.Fatal(err)
		}
		ip := PickIP(n, taken, n.Subnet.Addr())
		if !n.Subnet.Contains(ip) || ip == n.Gateway {
			t.Errorf("PickIP gave %s for %+v", ip, n)
		}
	}
}
