package devenv

import (
	"context"
	"fmt"
	"net"
	"strconv"

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

// findH2 returns the kind-network IP and the host address of the project's
// H2 container, if there is one.
func findH2(ctx context.Context, docker *client.Client, project string) (ip, hostAddr string, found bool) {
	list, err := ownedContainers(ctx, docker, project, "h2")
	if err != nil || len(list) == 0 {
		return "", "", false
	}
	c := list[0]
	if ns := c.NetworkSettings; ns != nil {
		if es := ns.Networks[cluster.NetworkName]; es != nil && es.IPAddress.IsValid() {
			ip = es.IPAddress.String()
		}
	}
	for _, p := range c.Ports {
		if p.PublicPort != 0 {
			hostAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.PublicPort)))
		}
	}
	return ip, hostAddr, true
}
