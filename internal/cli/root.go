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
	"strings"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/log"
)

// Exit codes that CI can trust.
const (
	ExitOK      = 0 // everything worked (for status: everything is ready)
	ExitFailure = 1 // something failed (for status: something is not ready)
	ExitConfig  = 2 // bad configuration or bad command line
	ExitNotUp   = 3 // devenv test: the environment did not come up, no test ran
	// ExitTimedOut is devenv test's code for a test that ran over its
	// timeout when none failed (a failure wins: exit 1).
	ExitTimedOut = 4
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

// usageError is a command-line mistake found by cobra (unknown command,
// wrong number of arguments, bad flag): exit code 2, and a hint to the
// command's --help.
type usageError struct {
	cmd string // the command path, e.g. "devenv status"
	err error
}

func (e *usageError) Error() string        { return fmt.Sprintf("%v: %v", ErrUsage, e.err) }
func (e *usageError) Unwrap() error        { return e.err }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// usageArgs makes the errors of an argument check usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{cmd: cmd.CommandPath(), err: err}
		}
		return nil
	}
}

// noSubcommand is the argument check of a command that only groups others
// (devenv, devenv images, ...): any argument is an unknown command.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return errors.New(msg)
}

// checkArgs makes every usage mistake in the command tree exit 2: each
// command's argument check returns a usageError, and a command that only
// groups others runs its help when called alone and rejects any argument as
// an unknown command (left to cobra, `devenv bogus` would exit 1 and
// `devenv images bogus` would print the help and exit 0).
func checkArgs(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = noSubcommand
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only when it makes the message
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if cmd.Args == nil {
		cmd.Args = cobra.ArbitraryArgs
	}
	cmd.Args = usageArgs(cmd.Args)
	for _, c := range cmd.Commands() {
		checkArgs(c)
	}
}

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
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", ue.cmd)
	}
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
130 interrupted (Ctrl-C) before the work was done. devenv test adds 3 (the
environment did not come up) and 4 (a test timed out and none failed; a
failed test gives 1).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringArrayVarP(&g.files, "file", "f", nil, "config file (repeatable; later files override earlier ones; default devenv.yaml)")
	_ = root.MarkPersistentFlagFilename("file", "yaml", "yml")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "print debug output")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	// Before the completion command is made: it keeps the stream it finds.
	root.SetIn(g.streams.In)
	root.SetOut(g.streams.Out)
	root.SetErr(g.streams.Err)
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	root.InitDefaultCompletionCmd() // here rather than in Execute, so that checkArgs sees it
	checkArgs(root)
	return root
}

// commands lists the constructors of every verb; each verb's file adds itself in init.
var commands []func(*globals) *cobra.Command
