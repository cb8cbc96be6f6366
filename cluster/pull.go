package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// PullOnNodes has the containerd of every node of the kind cluster pull
// refs now, through its CRI (crictl pull, the node image's own tool), as
// the kubelet would for a pod: the same registry host files apply. It is
// for a cluster that has just been created and whose controller manager
// has not yet made the pods (seconds, measured: 3–5 s after kind returns on
// 2 cores): the pods then find their images on the node instead of pulling
// them when they start. The refs are pulled one after the other on each
// node, the nodes at once. A ref that fails is reported; the others are
// still pulled, and a pod pulls what is missing as it always does.
func (c *Cluster) PullOnNodes(ctx context.Context, docker *client.Client, refs []string) error {
	if !c.Kind {
		return errors.New("pulling on the nodes: not a kind cluster on this Docker engine")
	}
	if docker == nil {
		return errors.New("pulling on the nodes: no Docker client")
	}
	nodes, err := nodeContainers(ctx, docker, c.Name)
	if err != nil {
		return err
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			var nodeErrs []error
			for _, ref := range refs {
				out, code, err := dockerx.Exec(ctx, docker, n.id, []string{"crictl", "pull", ref}, nil, nil)
				if err == nil && code != 0 {
					err = fmt.Errorf("crictl pull exited with %d: %s", code, oneLine(out))
				}
				if err != nil {
					nodeErrs = append(nodeErrs, fmt.Errorf("pulling %s on node %s: %w", ref, n.name, err))
				}
				if ctx.Err() != nil {
					break
				}
			}
			errs[i] = errors.Join(nodeErrs...)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
