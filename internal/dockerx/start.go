package dockerx

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// StartStopped starts the containers that carry all the labels
// ("key=value"), are not running and are meant to run (restart policy
// unless-stopped or always: the ones devenv keeps running), and returns
// their names. A Docker daemon that was killed and started again may leave
// such containers stopped: it stops what ran at its restart, and restarts
// them only by policies it does not apply to every container (kind#2045).
func StartStopped(ctx context.Context, cli *client.Client, labels ...string) ([]string, error) {
	f := client.Filters{}.Add("label", labels...).Add("status", "exited", "created")
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing stopped containers: %w", err)
	}
	var started []string
	for _, c := range list.Items {
		ins, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return started, fmt.Errorf("inspecting container %s: %w", c.ID[:12], err)
		}
		hc := ins.Container.HostConfig
		if hc == nil || (hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped && hc.RestartPolicy.Name != container.RestartPolicyAlways) {
			continue
		}
		name := strings.TrimPrefix(ins.Container.Name, "/")
		if _, err := cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return started, fmt.Errorf("starting container %s: %w", name, err)
		}
		started = append(started, name)
	}
	return started, nil
}
