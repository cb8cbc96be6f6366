package kindnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/devenv-tool/devenv/internal/execx"
)

// module is one entry of `go mod download -json`.
type module struct {
	Path    string
	Version string
	Dir     string
	Error   string
}

// download fetches modules ("path@version") into the module cache and returns
// them in order. A module that failed has Error set; err is only for a broken
// go command. dir must be outside any Go module.
func (b *builder) download(ctx context.Context, dir string, mods ...string) ([]module, error) {
	args := append([]string{"go", "mod", "download", "-json"}, mods...)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), goEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out []module
	dec := json.NewDecoder(&stdout)
	for {
		var m module
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, &execx.RunError{Command: args, Output: append(stdout.Bytes(), stderr.Bytes()...), Err: err}
		}
		out = append(out, m)
	}
	if len(out) != len(mods) {
		if runErr == nil {
			runErr = fmt.Errorf("got %d results for %d modules", len(out), len(mods))
		}
		return nil, &execx.RunError{Command: args, Output: stderr.Bytes(), Err: runErr}
	}
	return out, nil
}

// moduleDir downloads one module and returns its folder in the module cache.
func (b *builder) moduleDir(ctx context.Context, mod string) (module, error) {
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return module{}, fmt.Errorf("creating %s: %w", b.root, err)
	}
	ms, err := b.download(ctx, b.root, mod)
	if err != nil {
		return module{}, fmt.Errorf("downloading %s: %w", mod, err)
	}
	if ms[0].Error != "" || ms[0].Dir == "" {
		return module{}, fmt.Errorf("downloading %s: %s (is the Go module proxy reachable? check GOPROXY)", mod, ms[0].Error)
	}
	return ms[0], nil
}
