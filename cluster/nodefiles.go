package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
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
	// One exec per node: the files as a tar on stdin.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if !path.IsAbs(p) {
			return fmt.Errorf("writing node files: %q is not an absolute path", p)
		}
		b := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(path.Clean(p), "/"), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		var out bytes.Buffer
		if err := n.Command("tar", "-x", "--no-same-owner", "-C", "/").SetStdin(bytes.NewReader(buf.Bytes())).SetStderr(&out).Run(); err != nil {
			return fmt.Errorf("writing %d files on node %s: %w: %s", len(files), n, err, strings.TrimSpace(out.String()))
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
