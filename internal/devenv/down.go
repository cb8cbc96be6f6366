package devenv

import (
	"context"
	"errors"
	"strings"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

// DownOptions tune Down.
type DownOptions struct {
	Options
	// KeepCluster keeps the cluster and removes only the project's objects in it.
	KeepCluster bool
}

// Down removes the project's cluster and every container, volume and
// network devenv created for it, found by their labels so that what a
// crashed run left is cleaned too. Nothing devenv did not create is touched.
// Down holds the project's lock exclusively, so it waits (up to
// Options.LockWait) for an up, even one that only watches, to end.
func Down(ctx context.Context, cfg *config.Config, opts DownOptions) error {
	lg := opts.logger()
	lk, err := lockProject(ctx, cfg, opts.Options, "down", lockExclusive)
	if err != nil {
		return err
	}
	defer lk.release()
	p := &progress{log: lg}
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return err
	}
	defer docker.Close()
	var errs []error

	switch {
	case existing(cfg):
		errs = append(errs, downExisting(ctx, cfg, opts.Options, p))
	case opts.KeepCluster:
		done := p.start("removing the project's objects from cluster %s", cfg.Cluster.Name)
		c, err := cluster.Connect(ctx, cfg.Cluster.Name, opts.Kubeconfig)
		var removed []string
		switch {
		case errors.Is(err, cluster.ErrNoCluster):
			err = nil
		case err == nil:
			removed, err = c.DeleteOwned(ctx, "", Selector(cfg))
		}
		done(err, "removed %d objects from cluster %s", len(removed), cfg.Cluster.Name)
		errs = append(errs, err)
	default:
		done := p.start("deleting cluster %s", cfg.Cluster.Name)
		err := cluster.Delete(ctx, cfg.Cluster.Name, opts.Kubeconfig, cluster.Options{Log: lg.Slog()})
		done(err, "")
		errs = append(errs, err)
	}

	done := p.start("removing the project's containers and volumes")
	err = removeContainers(ctx, docker, projectKey(cfg))
	done(err, "")
	errs = append(errs, err)

	errs = append(errs, removeNetworkIfUnused(ctx, docker, p))
	return errors.Join(errs...)
}

// downExisting removes from a cluster devenv did not create what devenv
// applied there for this project: its labelled objects in its namespace
// only (another developer may run the same project in another one), and
// the namespace if devenv created it. The cluster stays.
func downExisting(ctx context.Context, cfg *config.Config, opts Options, p *progress) error {
	done := p.start("removing the project's objects from namespace %s (context %s)", cfg.Namespace, cfg.Cluster.Context)
	c, err := connectCluster(ctx, cfg, opts)
	if err != nil {
		done(err, "")
		return err
	}
	removed, err := c.DeleteOwned(ctx, cfg.Namespace, Selector(cfg))
	if err != nil {
		done(err, "")
		return err
	}
	gone, err := c.DeleteNamespace(ctx, cfg.Namespace, projectKey(cfg))
	msg := "namespace %s left in place: devenv did not create it"
	if gone {
		msg = "namespace %s deleted: devenv created it"
	}
	done(err, "removed %d objects from context %s; "+msg, len(removed), cfg.Cluster.Context, cfg.Namespace)
	return err
}

func removeContainers(ctx context.Context, docker *client.Client, key string) error {
	errs := []error{
		kafka.Remove(ctx, docker, key, true),
		h2.Remove(ctx, docker, key, true),
	}
	// Anything else labelled as the project's (a crashed run's leftovers).
	errs = append(errs, dockerx.RemoveLabelled(ctx, docker, "project", true, project.ID{Name: key}.Selector("")...))
	return errors.Join(errs...)
}

// removeNetworkIfUnused removes the kind network when devenv created it and
// nothing is attached to it any more (other kind clusters may share it).
func removeNetworkIfUnused(ctx context.Context, docker *client.Client, p *progress) error {
	opts := cluster.Options{Docker: docker}
	n, found, err := cluster.FindUnusedNetwork(ctx, opts)
	if err != nil || !found {
		return nil // no network, or not ours to remove: nothing to do
	}
	done := p.start("removing the %s Docker network", cluster.NetworkName)
	err = cluster.RemoveNetwork(ctx, n, opts)
	if err != nil && strings.Contains(err.Error(), "active endpoints") {
		// Another environment attached a container since the check: the
		// network is in use again, which is not a failure of this down.
		done(nil, "the %s Docker network is in use by another environment again: left in place", cluster.NetworkName)
		return nil
	}
	done(err, "")
	return err
}
