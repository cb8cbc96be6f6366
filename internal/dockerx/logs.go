package dockerx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// CopyLogs writes the container's output (stdout and stderr, interleaved as
// the engine keeps them) to w: its last tail lines, or all of it when tail
// is 0 or less. The container must not have a terminal (devenv's do not).
func CopyLogs(ctx context.Context, cli *client.Client, id string, tail int, w io.Writer) error {
	o := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	if tail > 0 {
		o.Tail = strconv.Itoa(tail)
	}
	rc, err := cli.ContainerLogs(ctx, id, o)
	if err != nil {
		return fmt.Errorf("reading the logs of container %s: %w", id, err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the logs of container %s: %w", id, err)
	}
	return nil
}
