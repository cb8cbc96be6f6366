package testenv

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
)

// RegistryImage is the stand-in of registry:3 (devenv images build) that
// the tests and benchmarks of registry mode run.
const RegistryImage = "devenv.local/registry:3"

// Registry is a registry container on the kind network that a test
// started, published on loopback.
type Registry struct {
	// Name is the container's name.
	Name string
	// Host is where this machine pushes: localhost:PORT.
	Host string
	// Endpoint is where the kind nodes pull from: NAME:5000 on the kind
	// network (registry.KindContainerd(Host, Endpoint) wires the two).
	Endpoint string
}

// StartRegistry starts RegistryImage as container name on the kind
// network (created when missing), publishing its port 5000 on a free
// loopback port, and removes the container (and its volume) when the test
// ends. It does not remove the kind network, which other clusters share.
func StartRegistry(tb testing.TB, ctx context.Context, docker *client.Client, name string) *Registry {
	tb.Helper()
	if _, err := cluster.EnsureNetwork(ctx, cluster.Options{Docker: docker}); err != nil {
		tb.Fatalf("the kind network for the registry: %v", err)
	}
	tb.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", name).Run() })
	DockerCLI(tb, "run", "-d", "--name", name, "--network", cluster.NetworkName, "-p", "127.0.0.1::5000", RegistryImage)
	port := strings.TrimPrefix(strings.TrimSpace(DockerCLI(tb, "port", name, "5000/tcp")), "127.0.0.1:")
	return &Registry{Name: name, Host: "localhost:" + port, Endpoint: name + ":5000"}
}

// Uploads counts the blob uploads the registry completed (one PUT per
// blob, from its access log).
func (r *Registry) Uploads(tb testing.TB) int {
	tb.Helper()
	n := 0
	for _, l := range strings.Split(DockerCLI(tb, "logs", r.Name), "\n") {
		if strings.Contains(l, `"PUT /v2/`) && strings.Contains(l, "/blobs/uploads/") {
			n++
		}
	}
	return n
}

// DockerCLI runs the docker CLI and returns its combined output, failing
// tb with the command line and that output on error.
func DockerCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
