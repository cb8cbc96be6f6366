package testenv

import (
	"bytes"
	"context"
	"os/exec"
	"path"
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

	provider *kindcluster.Provider
}

// NewKindCluster creates a one-node kind cluster named name from nodeImage,
// its context written to kubeconfig, with the given containerd config
// patches (registry.KindContainerd's, for one). It applies this machine's
// --privileged workaround first (cluster's shim) and deletes the cluster
// when the test ends.
func NewKindCluster(tb testing.TB, ctx context.Context, name, nodeImage, kubeconfig string, containerdPatches []string) *KindCluster {
	tb.Helper()
	if _, err := cluster.InstallPrivilegedShim(ctx, nodeImage, cluster.Options{}); err != nil {
		tb.Fatal(err)
	}
	provider := kindcluster.NewProvider(kindcluster.ProviderWithDocker())
	cfg := &v1alpha4.Cluster{
		Nodes:                   []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: nodeImage}},
		ContainerdConfigPatches: containerdPatches,
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
	return &KindCluster{Name: name, Context: "kind-" + name, Kubeconfig: kubeconfig, provider: provider}
}

// WriteNodeFiles writes files (absolute path on the node -> content) on
// every node of the cluster.
func (k *KindCluster) WriteNodeFiles(tb testing.TB, files map[string][]byte) {
	tb.Helper()
	nodes, err := k.provider.ListInternalNodes(k.Name)
	if err != nil {
		tb.Fatal(err)
	}
	for _, n := range nodes {
		for p, b := range files {
			if err := n.Command("mkdir", "-p", path.Dir(p)).Run(); err != nil {
				tb.Fatal(err)
			}
			if err := nodeutils.WriteFile(n, p, string(b)); err != nil {
				tb.Fatal(err)
			}
		}
	}
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
