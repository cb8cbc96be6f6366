package kafka

import (
	"context"
	"fmt"
	"io"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// Logs writes the output of the broker container of project name (found by
// label, as Find does; running or not) to w: its last tail lines, or all of
// it when tail is 0 or less. A project without a broker container is an
// error.
func Logs(ctx context.Context, cli *client.Client, name string, tail int, w io.Writer) error {
	list, err := listContainers(ctx, cli, name)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return fmt.Errorf("reading the kafka container's logs: project %s has no kafka container", name)
	}
	return dockerx.CopyLogs(ctx, cli, list[0].ID, tail, w)
}
