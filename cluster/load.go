package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/devenv-tool/devenv/internal/log"
)

// LoadImage copies the Docker image ref into every node's containerd, so pods
// can use it without a registry (with imagePullPolicy IfNotPresent or Never).
// Nodes that already hold the same image ID are skipped; loaded reports
// whether any node needed it.
//
// kind runs `docker exec --privileged` into the nodes, so this goes through the
// docker shim where the engine refuses --privileged (see InstallPrivilegedShim).
func (c *Cluster) LoadImage(ctx context.Context, docker *client.Client, ref string) (loaded bool, err error) {
	if c.provider == nil {
		c.provider = newProvider(c.log)
	}
	return loadImage(ctx, docker, c.provider, c.Name, ref, c.log)
}

// PreloadSpec says which image Preload loads into which cluster.
type PreloadSpec struct {
	Cluster string        // the kind cluster's name
	Ref     string        // the Docker image to load
	Timeout time.Duration // how long to wait for a node to answer; 0 means DefaultWait
}

// Preload loads spec.Ref into the nodes of cluster spec.Cluster while the
// cluster is still being created: it waits, up to spec.Timeout, until a
// node's containerd answers (kind starts it before kubeadm runs), then loads
// as LoadImage does. Callers run it beside Ensure so the images are in place
// when the control plane is; a failed preload is repaired by a later
// LoadImage. loaded reports whether any node needed the image.
func Preload(ctx context.Context, spec PreloadSpec, opts Options) (loaded bool, err error) {
	lg := log.FromSlog(opts.Log)
	docker, done, err := opts.docker(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	name, ref, timeout := spec.Cluster, spec.Ref, spec.Timeout
	if timeout == 0 {
		timeout = DefaultWait
	}
	provider := newProvider(lg)
	deadline := time.Now().Add(timeout)
	shim := false
	var shimErr error
	for {
		list, err := provider.ListInternalNodes(name)
		if err == nil && len(list) > 0 && !shim {
			// kind execs into nodes with --privileged: the workaround must be
			// in place first on engines that refuse it (the program may still
			// be installing it beside: keep waiting).
			if node, ierr := docker.ContainerInspect(ctx, list[0].String(), client.ContainerInspectOptions{}); ierr == nil {
				_, shimErr = ensurePrivileged(ctx, docker, node.Container.Config.Image, lg)
				shim = shimErr == nil
			}
		}
		if shim && err == nil && len(list) > 0 && list[0].Command("ctr", "--namespace=k8s.io", "version").Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			if shimErr != nil {
				return false, fmt.Errorf("preloading %s: %w", ref, shimErr)
			}
			return false, fmt.Errorf("preloading %s: no node of cluster %q answered within %s", ref, name, timeout)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return loadImage(ctx, docker, provider, name, ref, lg)
}

func loadImage(ctx context.Context, docker *client.Client, provider *kindcluster.Provider, name, ref string, lg *log.Logger) (loaded bool, err error) {
	img, err := docker.ImageInspect(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("loading image %s into cluster %q: it is not in Docker (build it first): %w", ref, name, err)
	}
	list, err := provider.ListInternalNodes(name)
	if err != nil {
		return false, fmt.Errorf("listing nodes of cluster %q: %w", name, err)
	}
	if len(list) == 0 {
		return false, fmt.Errorf("loading image %s: cluster %q has no nodes: create it with `devenv up`", ref, name)
	}
	node, err := docker.ContainerInspect(ctx, list[0].String(), client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("inspecting node %s: %w", list[0].String(), err)
	}
	if _, err := ensurePrivileged(ctx, docker, node.Container.Config.Image, lg); err != nil {
		return false, err
	}

	var need []nodes.Node
	for _, n := range list {
		if have, err := nodeutils.ImageID(n, ref); err == nil && have == img.ID {
			continue
		}
		need = append(need, n)
	}
	if len(need) == 0 {
		lg.Debugf("image %s (%s) is already on every node", ref, shortID(img.ID))
		return false, nil
	}
	start := time.Now()
	for _, n := range need {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		// Only the layers the node lacks (kind load sends them all, kind#2922);
		// the whole archive when Docker's format is not the one read here.
		sent, total, err := loadLayers(ctx, docker, n, ref)
		switch {
		case errors.Is(err, errNotLegacyArchive):
			lg.Debugf("sending all layers of %s: %v", ref, err)
			err = loadOne(ctx, docker, n, ref)
		case err == nil:
			lg.Debugf("sent %d of %d layers of %s to node %s", sent, total, ref, n.String())
		}
		if err != nil {
			return false, err
		}
	}
	lg.Infof("loaded image %s into cluster %q in %s", ref, name, time.Since(start).Round(100*time.Millisecond))
	return true, nil
}

// loadOne streams `docker save ref` into the node's containerd.
func loadOne(ctx context.Context, docker *client.Client, n nodes.Node, ref string) error {
	rc, err := docker.ImageSave(ctx, []string{ref})
	if err != nil {
		return fmt.Errorf("saving image %s from Docker: %w", ref, err)
	}
	defer rc.Close()
	if err := nodeutils.LoadImageArchive(n, rc); err != nil {
		return fmt.Errorf("loading image %s into node %s: %w", ref, n.String(), err)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}
