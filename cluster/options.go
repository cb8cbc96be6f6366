package cluster

import (
	"context"
	"log/slog"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
)

// Options holds what the package's calls depend on besides the desired state
// (Spec, PreloadSpec): the Docker client, the logger and devenv's state
// folder. The zero value works: each call connects to Docker for itself, logs
// nothing and uses devenv's usual state folder. kafka and h2 take the same
// kind of Options.
type Options struct {
	// Docker is the engine client; nil connects for the call with the
	// environment's settings (DOCKER_HOST, ...).
	Docker *client.Client
	// Log receives progress lines (info) and details (debug, including
	// kind's own); nil is silent.
	Log *slog.Logger
	// StateDir is the private folder where Ensure records which clusters it
	// created and whether kind's create finished; "" means devenv's state
	// folder ($DEVENV_STATE, else $XDG_STATE_HOME/devenv, else
	// ~/.local/state/devenv).
	StateDir string
}

// docker returns Options.Docker, or a new client and the func that closes it.
func (o Options) docker(ctx context.Context) (*client.Client, func(), error) {
	if o.Docker != nil {
		return o.Docker, func() {}, nil
	}
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return cli, func() { _ = cli.Close() }, nil
}
