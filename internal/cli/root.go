// Package cli holds devenv's commands: flag parsing and wiring only. Each
// command has one flags struct and a private run function that receives its
// dependencies, so tests can call it; the work itself lives in the packages
// those functions call.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/log"
)

// Exit codes that CI can trust.
const (
	ExitOK      = 0 // everything worked (for status: everything is ready)
	ExitFailure = 1 // something failed (for status: something is not ready)
	ExitConfig  = 2 // bad configuration or bad command line
	// ExitInterrupted is the shell's code for a command stopped by Ctrl-C
	// before it finished (128 + SIGINT). A watching up stopped by Ctrl-C
	// has finished its work and exits 0.
	ExitInterrupted = 130
)

// Streams are the standard streams a command reads and writes.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// ErrUsage marks command-line and configuration errors (exit code 2).
var ErrUsage = errors.New("usage error")

// exitError carries an explicit exit code without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globals are the flags every verb shares.
type globals struct {
	files   []string // -f, repeatable; later files override earlier ones
	verbose bool     // -v
	streams Streams
}

// logger returns the user-facing logger (stderr), with debug lines when -v is set.
func (g *globals) logger() *log.Logger { return log.New(g.streams.Err, g.verbose) }

// configFiles returns the -f files, or devenv.yaml when none was given.
func (g *globals) configFiles() []string {
	if len(g.files) == 0 {
		return []string{"devenv.yaml"}
	}
	return g.files
}

// Run executes devenv with args and returns the process exit code.
func Run(ctx context.Context, args []string, streams Streams) int {
	g := &globals{streams: streams}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	err := root.ExecuteContext(ctx)
	if err != nil && ctx.Err() != nil {
		// Ctrl-C (or SIGTERM) before the work was done: whatever failed
		// after it failed because of it.
		fmt.Fprintln(streams.Err, "interrupted; run the command again to finish (what exists is reused)")
		return ExitInterrupted
	}
	return exitCode(err, streams.Err)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	if errors.Is(err, ErrUsage) || isConfigError(err) {
		return ExitConfig
	}
	return ExitFailure
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "devenv",
		Short: "A complete local microservice environment with one command",
		Long: `devenv reads devenv.yaml and gives you a kind cluster, Kafka (and H2) running
beside it and wired in through Services and endpoints, and every service built,
loaded and deployed, then keeps it current while you edit.

Exit codes: 0 success, 1 failure (or not ready), 2 bad configuration or usage,
130 interrupted (Ctrl-C) before the work was done.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringArrayVarP(&g.files, "file", "f", nil, "config file (repeatable; later files override earlier ones; default devenv.yaml)")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "print debug output")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", ErrUsage, err) })
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root
}

// commands lists the constructors of every verb; each verb's file adds itself in init.
var commands []func(*globals) *cobra.Command
