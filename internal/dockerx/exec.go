package dockerx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// Exec runs cmd in container id and returns its combined output and exit
// code. stdin, when not nil, is its input; out, when not nil, also gets the
// output as it comes. A non-zero exit is not an error: the caller decides.
func Exec(ctx context.Context, docker *client.Client, id string, cmd []string, stdin []byte, out io.Writer) (string, int, error) {
	created, err := docker.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
	att, err := docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
	defer att.Close()
	if stdin != nil {
		go func() {
			_, _ = att.Conn.Write(stdin)
			_ = att.CloseWrite()
		}()
	}
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if out != nil {
		w = io.MultiWriter(&buf, out)
	}
	if _, err := stdcopy.StdCopy(w, w, att.Reader); err != nil {
		return buf.String(), 0, fmt.Errorf("reading exec output from container %s: %w", id, err)
	}
	// The output ends when the process exits; the engine may record the
	// exit a moment later. The work is done: its result is read even when
	// ctx ended meanwhile.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		ins, err := docker.ExecInspect(ictx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return buf.String(), 0, fmt.Errorf("inspecting exec in container %s: %w", id, err)
		}
		if !ins.Running || i == 500 {
			return buf.String(), ins.ExitCode, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}
