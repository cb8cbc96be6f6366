package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// kindRoleLabel is the label kind puts on each container of a cluster with
// its role; the external load balancer of a multi-control-plane cluster
// runs no containerd.
const (
	kindRoleLabel          = "io.x-k8s.kind.role"
	kindRoleLoadBalancer   = "external-load-balancer"
	containerdConfigOnNode = "/etc/containerd/config.toml"
)

// WriteNodeFiles writes files (absolute path on the node -> content) on
// every node of a kind cluster, root-owned, creating their folders. It is
// for configuration devenv owns, such as containerd's registry host files.
// It copies through Docker's archive API (no exec in the node), so it also
// works while kind is still booting the node.
func (c *Cluster) WriteNodeFiles(ctx context.Context, docker *client.Client, files map[string][]byte) error {
	if !c.Kind {
		return errors.New("writing node files: not a kind cluster on this Docker engine")
	}
	return WriteNodeFiles(ctx, docker, c.Name, files)
}

// WriteNodeFiles is Cluster.WriteNodeFiles for kind cluster name, which
// need not answer yet: its node containers need only exist.
func WriteNodeFiles(ctx context.Context, docker *client.Client, name string, files map[string][]byte) error {
	if docker == nil {
		return errors.New("writing node files: no Docker client")
	}
	nodes, err := nodeContainers(ctx, docker, name)
	if err != nil {
		return err
	}
	// The files as one tar; Docker creates missing folders (root-owned,
	// 0755) and leaves existing ones as they are.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if !path.IsAbs(p) {
			return fmt.Errorf("writing node files: %q is not an absolute path", p)
		}
		b := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(path.Clean(p), "/"), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
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
		_, err := docker.CopyToContainer(ctx, n.id, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(buf.Bytes()), CopyUIDGID: true})
		if err != nil {
			return fmt.Errorf("writing %d files on node %s: %w", len(files), n.name, err)
		}
	}
	return nil
}

// ReadsHostFiles says whether the containerd of every node of a kind
// cluster reads per-registry host files from dir (config_path): clusters
// devenv created before it set that up do not.
func (c *Cluster) ReadsHostFiles(ctx context.Context, docker *client.Client, dir string) (bool, error) {
	if !c.Kind {
		return false, errors.New("reading the nodes' containerd config: not a kind cluster on this Docker engine")
	}
	if docker == nil {
		return false, errors.New("reading the nodes' containerd config: no Docker client")
	}
	nodes, err := nodeContainers(ctx, docker, c.Name)
	if err != nil {
		return false, err
	}
	for _, n := range nodes {
		cfg, err := readNodeFile(ctx, docker, n.id, containerdConfigOnNode)
		if err != nil {
			return false, fmt.Errorf("reading containerd's config on node %s: %w", n.name, err)
		}
		if !strings.Contains(string(cfg), `config_path = "`+dir+`"`) {
			return false, nil
		}
	}
	return true, nil
}

// readNodeFile reads one regular file of a container through Docker's
// archive API.
func readNodeFile(ctx context.Context, docker *client.Client, id, file string) ([]byte, error) {
	res, err := docker.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: file})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: not in the archive Docker sent", file)
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

// nodeContainer is one container of a kind cluster.
type nodeContainer struct{ id, name, role string }

// listNodes lists the containers of kind cluster name, running or not.
func listNodes(ctx context.Context, docker *client.Client, name string) ([]nodeContainer, error) {
	res, err := docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", kindClusterLabel+"="+name),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the node containers of cluster %q: %w", name, err)
	}
	out := make([]nodeContainer, 0, len(res.Items))
	for _, ct := range res.Items {
		n := ct.ID
		if len(ct.Names) > 0 {
			n = strings.TrimPrefix(ct.Names[0], "/")
		}
		out = append(out, nodeContainer{id: ct.ID, name: n, role: ct.Labels[kindRoleLabel]})
	}
	return out, nil
}

// nodeContainers lists the node containers of kind cluster name that run
// containerd (not the external load balancer), running or not; none is an
// error.
func nodeContainers(ctx context.Context, docker *client.Client, name string) ([]nodeContainer, error) {
	all, err := listNodes(ctx, docker, name)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(n nodeContainer) bool { return n.role == kindRoleLoadBalancer })
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster %s has no node containers: run devenv up to create it", name)
	}
	return out, nil
}
