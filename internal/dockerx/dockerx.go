// Package dockerx connects to the Docker engine with the one client module
// devenv uses everywhere (github.com/moby/moby/client) and turns a dead daemon
// into an error that says what to do.
package dockerx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
)

// ErrNoDaemon is returned (wrapped) when no Docker engine answers.
var ErrNoDaemon = errors.New("no Docker engine answers")

// Connect returns a client for the engine named by DOCKER_HOST (or the default
// socket) after checking that it answers.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("creating Docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("%w at %s (%w): start Docker (for example `dockerd &` or `systemctl start docker`) or set DOCKER_HOST", ErrNoDaemon, cli.DaemonHost(), err)
	}
	return cli, nil
}
