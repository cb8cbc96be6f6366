// Command devenv gives a developer, a CI job or a workshop room a complete
// local microservice environment with one command: a kind cluster, Kafka (and
// H2) outside it wired in through Services and endpoints, and every service
// built, loaded and deployed, kept current while the sources change.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/devenv-tool/devenv/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
