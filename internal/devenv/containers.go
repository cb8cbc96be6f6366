package devenv

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/templates"
)

// ownedContainers lists every container (running or not) labelled as the
// project's, optionally of one component ("kafka", "h2").
func ownedContainers(ctx context.Context, docker *client.Client, project, component string) ([]container.Summary, error) {
	f := client.Filters{}.Add("label", templates.LabelProject+"="+project)
	if component != "" {
		f = f.Add("label", templates.LabelComponent+"="+component)
	}
	res, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing the project's containers: %w", err)
	}
	return res.Items, nil
}

// findH2 returns the IP on the kind network of the project's H2 container, if any.
func findH2(ctx context.Context, docker *client.Client, project string) (string, bool) {
	list, err := ownedContainers(ctx, docker, project, "h2")
	if err != nil || len(list) == 0 {
		return "", false
	}
	if ns := list[0].NetworkSettings; ns != nil {
		if es := ns.Networks[cluster.NetworkName]; es != nil && es.IPAddress.IsValid() {
			return es.IPAddress.String(), true
		}
	}
	return "", false
}
