package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/devenv-tool/devenv/cluster"
)

// KindCluster is a kind cluster a test created itself, with kind's Go API
// and without devenv: the "cluster devenv did not create" of the
// beyond-one-machine tests.
type KindCluster struct {
	Name       string
	Context    string // kind-<Name>
	Kubeconfig string
}

// Mirror makes the cluster's containerd pull images named Host/... from
// Endpoint (e.g. Host localhost:5001, Endpoint http://registry:5000, a
// registry container on the kind network), as kind's local-registry guide
// does.
type Mirror struct{ Host, Endpoint string }

// NewKindCluster creates a one-node kind cluster named name from nodeImage,
// its context written to kubeconfig, with containerd reading per-registry
// hosts from /etc/containerd/certs.d and the mirrors written there. It
// applies this machine's --privileged workaround first (cluster's shim) and
// deletes the cluster when the test ends.
func NewKindCluster(tb testing.TB, ctx context.Context, name, nodeImage, kubeconfig string, mirrors ...Mirror) *KindCluster {
	tb.Helper()
	if _, err := cluster.InstallPrivilegedShim(ctx, nodeImage, cluster.Options{}); err != nil {
		tb.Fatal(err)
	}
	provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	cfg := &v1alpha4.Cluster{
		Nodes: []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: nodeImage}},
		ContainerdConfigPatches: []string{`[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"`},
	}
	tb.Cleanup(func() {
		if err := provider.Delete(name, kubeconfig); err != nil {
			tb.Errorf("deleting kind cluster %s: %v", name, err)
		}
	})
	if err := provider.Create(name, kindcluster.CreateWithV1Alpha4Config(cfg), kindcluster.CreateWithNodeImage(nodeImage),
		kindcluster.CreateWithKubeconfigPath(kubeconfig), kindcluster.CreateWithWaitForReady(3*time.Minute),
		kindcluster.CreateWithDisplayUsage(false), kindcluster.CreateWithDisplaySalutation(false)); err != nil {
		tb.Fatalf("creating kind cluster %s: %v", name, err)
	}
	nodes, err := provider.ListInternalNodes(name)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range mirrors {
		hosts := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", m.Endpoint)
		for _, n := range nodes {
			dir := "/etc/containerd/certs.d/" + m.Host
			if err := n.Command("mkdir", "-p", dir).Run(); err != nil {
				tb.Fatal(err)
			}
			if err := nodeutils.WriteFile(n, dir+"/hosts.toml", hosts); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return &KindCluster{Name: name, Context: "kind-" + name, Kubeconfig: kubeconfig}
}

// NodeImages lists the image references the cluster's node containerd
// holds (ctr images ls), one per line.
func (k *KindCluster) NodeImages(tb testing.TB) []string {
	tb.Helper()
	var out bytes.Buffer
	cmd := exec.Command("docker", "exec", k.Name+"-control-plane", "ctr", "-n", "k8s.io", "images", "ls", "-q")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("listing the node's images: %v", err)
	}
	return strings.Fields(out.String())
}
