package devenv

import (
	"context"
	"errors"

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
func Down(ctx context.Context, cfg *config.Config, opts DownOptions) error {
	lg := opts.logger()
	p := &progress{log: lg}
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return err
	}
	defer docker.Close()
	var errs []error

	if opts.KeepCluster {
		done := p.start("removing the project's objects from cluster %s", cfg.Cluster.Name)
		c, err := cluster.Connect(ctx, cfg.Cluster.Name, opts.Kubeconfig)
		var removed []string
		switch {
		case errors.Is(err, cluster.ErrNoCluster):
			err = nil
		case err == nil:
			removed, err = c.DeleteOwned(ctx, Selector(cfg))
		}
		done(err, "removed %d objects from cluster %s", len(removed), cfg.Cluster.Name)
		errs = append(errs, err)
	} else {
		done := p.start("deleting cluster %s", cfg.Cluster.Name)
		err := cluster.Delete(ctx, cfg.Cluster.Name, opts.Kubeconfig, cluster.Options{Log: lg.Slog()})
		done(err, "")
		errs = append(errs, err)
	}

	done := p.start("removing the project's containers and volumes")
	err = removeContainers(ctx, docker, cfg.Name)
	done(err, "")
	errs = append(errs, err)

	errs = append(errs, removeNetworkIfUnused(ctx, docker, p))
	return errors.Join(errs...)
}

func removeContainers(ctx context.Context, docker *client.Client, name string) error {
	errs := []error{
		kafka.Remove(ctx, docker, name, true),
		h2.Remove(ctx, docker, name, true),
	}
	// Anything else labelled as the project's (a crashed run's leftovers).
	errs = append(errs, dockerx.RemoveLabelled(ctx, docker, "project", true, project.ID{Name: name}.Selector("")...))
	return errors.Join(errs...)
}

// removeNetworkIfUnused removes the kind network when devenv created it and
// nothing is attached to it any more (other kind clusters may share it).
func removeNetworkIfUnused(ctx context.Context, docker *client.Client, p *progress) error {
	res, err := docker.NetworkInspect(ctx, cluster.NetworkName, client.NetworkInspectOptions{})
	if err != nil {
		return nil // no network: nothing to do
	}
	n := res.Network
	if n.Labels[cluster.LabelOwned] != "true" || len(n.Containers) > 0 {
		return nil
	}
	done := p.start("removing the %s Docker network", cluster.NetworkName)
	_, err = docker.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
	done(err, "")
	return err
}
