package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// LoadImage copies the Docker image ref into every node's containerd, so pods
// can use it without a registry (with imagePullPolicy IfNotPresent or Never).
// Nodes that already hold the same image ID are skipped; loaded reports
// whether any node needed it.
//
// kind runs `docker exec --privileged` into the nodes, so this goes through the
// docker shim where the engine refuses --privileged (see EnsurePrivileged).
func (c *Cluster) LoadImage(ctx context.Context, docker *client.Client, ref string) (loaded bool, err error) {
	img, err := docker.ImageInspect(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("loading image %s into cluster %q: it is not in Docker (build it first): %w", ref, c.Name, err)
	}
	if c.provider == nil {
		c.provider = newProvider(c.log)
	}
	list, err := c.provider.ListInternalNodes(c.Name)
	if err != nil {
		return false, fmt.Errorf("listing nodes of cluster %q: %w", c.Name, err)
	}
	if len(list) == 0 {
		return false, fmt.Errorf("loading image %s: cluster %q has no nodes: create it with `devenv up`", ref, c.Name)
	}
	node, err := docker.ContainerInspect(ctx, list[0].String(), client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("inspecting node %s: %w", list[0].String(), err)
	}
	if _, err := EnsurePrivileged(ctx, docker, node.Container.Config.Image, c.log); err != nil {
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
		c.log.Debugf("image %s (%s) is already on every node", ref, shortID(img.ID))
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
			c.log.Debugf("sending all layers of %s: %v", ref, err)
			err = loadOne(ctx, docker, n, ref)
		case err == nil:
			c.log.Debugf("sent %d of %d layers of %s to node %s", sent, total, ref, n.String())
		}
		if err != nil {
			return false, err
		}
	}
	c.log.Infof("loaded image %s into cluster %q in %s", ref, c.Name, time.Since(start).Round(100*time.Millisecond))
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
