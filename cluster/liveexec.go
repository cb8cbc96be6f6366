package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/devenv-tool/devenv/internal/supervise"
)

// emptyTar is a tar with no entries (its end marker): what the supervisor
// reads when only removals are asked (an exec stream's standard input may
// not be closed, so it never reads to its end).
var emptyTar = make([]byte, 1024)

// liveExec runs "supervise update args..." in t's container through the
// Kubernetes API (pods/exec: websocket, else SPDY), files on its standard
// input, as the image's USER with the container's own rights. It returns
// the output and exit code; a container with no supervisor to run gives
// 127, and a user not allowed to exec into the pod gives an error
// wrapping ErrNoLive.
func (c *Cluster) liveExec(ctx context.Context, t LiveTarget, args []string, files []byte) (string, int, error) {
	if c.REST == nil {
		return "", 0, errors.New("no connection to the Kubernetes API")
	}
	u := c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(t.Namespace).Name(t.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: t.Container,
			Command:   append([]string{supervise.Path, "update"}, args...),
			Stdin:     true, Stdout: true, Stderr: true,
		}, scheme.ParameterCodec).URL()
	ws, err := remotecommand.NewWebSocketExecutor(c.REST, http.MethodGet, u.String())
	if err != nil {
		return "", 0, fmt.Errorf("exec into pod %s: %w", t.Pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(c.REST, http.MethodPost, u)
	if err != nil {
		return "", 0, fmt.Errorf("exec into pod %s: %w", t.Pod, err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", 0, fmt.Errorf("exec into pod %s: %w", t.Pod, err)
	}
	if len(files) == 0 {
		files = emptyTar
	}
	var out syncBuffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(files), Stdout: &out, Stderr: &out})
	return execOutcome(out.String(), err)
}

// execOutcome turns the result of an exec stream into LiveUpdate's exit
// code and output: the command's exit code, 127 when the container has no
// supervisor to start, or an error (wrapping ErrNoLive when exec into the
// pod is forbidden).
func execOutcome(out string, err error) (string, int, error) {
	if err == nil {
		return out, 0, nil
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return out, exit.ExitStatus(), nil
	}
	msg := err.Error()
	// The runtime could not start the supervisor: e.g. `... exec failed:
	// unable to start container process: exec: "/.devenv/supervise": stat
	// /.devenv/supervise: no such file or directory: unknown`.
	if strings.Contains(msg, supervise.Path) {
		for _, why := range []string{"no such file", "not found", "permission denied"} {
			if strings.Contains(msg, why) {
				return fmt.Sprintf("the container has no devenv supervisor to run (%s)", oneLine(msg)), 127, nil
			}
		}
	}
	if strings.Contains(strings.ToLower(msg), "forbidden") {
		return out, 0, fmt.Errorf("%w: not allowed to exec into the pod: %s", ErrNoLive, oneLine(msg))
	}
	return out, 0, fmt.Errorf("exec: %w", err)
}

// oneLine is s up to its first line break.
func oneLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// syncBuffer is a bytes.Buffer that the stream's stdout and stderr
// copies may write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
