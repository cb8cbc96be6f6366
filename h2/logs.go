package h2

import (
	"context"
	"fmt"
	"io"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// Logs writes the output of the H2 server container of project name (found
// as Find finds it; running or not) to w: its last tail lines, or all of it
// when tail is 0 or less. A project without an H2 container is an error.
func Logs(ctx context.Context, cli *client.Client, name string, tail int, w io.Writer) error {
	ep, found, err := Find(ctx, cli, name)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("reading the H2 container's logs: project %s has no H2 container", name)
	}
	return dockerx.CopyLogs(ctx, cli, ep.ContainerID, tail, w)
}
