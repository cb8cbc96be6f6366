package devenv

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/project"
)

// ownedContainers lists every container (running or not) labelled as the
// project's, optionally of one component ("kafka", "h2").
func ownedContainers(ctx context.Context, docker *client.Client, name, component string) ([]container.Summary, error) {
	f := client.Filters{}.Add("label", project.ID{Name: name}.Selector(component)...)
	res, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing the project's containers: %w", err)
	}
	return res.Items, nil
}
