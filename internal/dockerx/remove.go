package dockerx

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// RemoveLabelled removes every container, running or not, that carries all
// the labels ("key=value"), and with volumes every volume that does. what
// names them in errors ("kafka", "H2"). What is already gone is no error.
func RemoveLabelled(ctx context.Context, cli *client.Client, what string, volumes bool, labels ...string) error {
	f := client.Filters{}.Add("label", labels...)
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing %s containers: %w", what, err)
	}
	for _, c := range list.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing %s container %s: %w", what, c.ID[:12], err)
		}
	}
	if !volumes {
		return nil
	}
	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("listing %s volumes: %w", what, err)
	}
	for _, v := range vols.Items {
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing %s volume %s: %w", what, v.Name, err)
		}
	}
	return nil
}
