// Package execx runs external commands and turns their failures into errors
// that carry the command line and its output.
package execx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// RunError is returned when a command exits non-zero or cannot start.
type RunError struct {
	Command []string
	Output  []byte
	Err     error
}

func (e *RunError) Error() string {
	out := strings.TrimSpace(string(e.Output))
	if len(out) > 4000 {
		out = "..." + out[len(out)-4000:]
	}
	if out == "" {
		return fmt.Sprintf("command %q failed: %v", strings.Join(e.Command, " "), e.Err)
	}
	return fmt.Sprintf("command %q failed: %v\n%s", strings.Join(e.Command, " "), e.Err, out)
}

func (e *RunError) Unwrap() error { return e.Err }

// Cmd describes one command to run.
type Cmd struct {
	Args  []string  // program and arguments
	Dir   string    // working directory; empty for the current one
	Env   []string  // extra KEY=VALUE entries added to the environment
	Stdin io.Reader // optional
	// Stream, when set, receives the combined output as it is produced.
	Stream io.Writer
}

// Output runs the command and returns its combined output. On failure the
// error is a *RunError holding the command line and the output.
func Output(ctx context.Context, c Cmd) ([]byte, error) {
	if len(c.Args) == 0 {
		return nil, fmt.Errorf("execx: empty command")
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(cmd.Environ(), c.Env...)
	}
	cmd.Stdin = c.Stdin
	var buf bytes.Buffer
	var w io.Writer = &buf
	if c.Stream != nil {
		w = io.MultiWriter(&buf, c.Stream)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return buf.Bytes(), &RunError{Command: c.Args, Output: buf.Bytes(), Err: err}
	}
	return buf.Bytes(), nil
}

// Run is Output without the output.
func Run(ctx context.Context, c Cmd) error {
	_, err := Output(ctx, c)
	return err
}
