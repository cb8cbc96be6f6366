package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// WriteNodeFiles writes files (absolute path on the node -> content) on
// every node of a kind cluster, root-owned, creating their folders. It is
// for configuration devenv owns, such as containerd's registry host files.
func (c *Cluster) WriteNodeFiles(ctx context.Context, files map[string][]byte) error {
	if !c.Kind || c.provider == nil {
		return errors.New("writing node files: not a kind cluster on this Docker engine")
	}
	nodes, err := c.provider.ListInternalNodes(c.Name)
	if err != nil {
		return fmt.Errorf("listing the nodes of cluster %s: %w", c.Name, err)
	}
	for _, n := range nodes {
		for p, b := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := n.Command("mkdir", "-p", path.Dir(p)).Run(); err != nil {
				return fmt.Errorf("writing %s on node %s: %w", p, n, err)
			}
			if err := nodeutils.WriteFile(n, p, string(b)); err != nil {
				return fmt.Errorf("writing %s on node %s: %w", p, n, err)
			}
		}
	}
	return nil
}

// ReadsHostFiles says whether the containerd of every node of a kind
// cluster reads per-registry host files from dir (config_path): clusters
// devenv created before it set that up do not.
func (c *Cluster) ReadsHostFiles(ctx context.Context, dir string) (bool, error) {
	if !c.Kind || c.provider == nil {
		return false, errors.New("reading the nodes' containerd config: not a kind cluster on this Docker engine")
	}
	nodes, err := c.provider.ListInternalNodes(c.Name)
	if err != nil {
		return false, fmt.Errorf("listing the nodes of cluster %s: %w", c.Name, err)
	}
	for _, n := range nodes {
		var out bytes.Buffer
		if err := n.Command("cat", "/etc/containerd/config.toml").SetStdout(&out).Run(); err != nil {
			return false, fmt.Errorf("reading containerd's config on node %s: %w", n, err)
		}
		if !strings.Contains(out.String(), `config_path = "`+dir+`"`) {
			return false, nil
		}
	}
	return true, nil
}
