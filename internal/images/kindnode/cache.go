package kindnode

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/devenv-tool/devenv/internal/execx"
	"github.com/devenv-tool/devenv/internal/images/standin"
)

// builder holds one node image build's state.
type builder struct {
	env  *standin.Env
	root string // <CacheDir>/kind-node/<version>
}

func (b *builder) dir(name string) string { return filepath.Join(b.root, name) }

func (b *builder) step(s string) {
	if b.env.Step != nil {
		b.env.Step(s)
	}
}

func (b *builder) output() io.Writer { return b.env.Output }

// cached runs one restartable step. It is skipped when the stamp named id holds
// the hash of inputs and every output exists. Otherwise the outputs are removed,
// run is called, and the stamp is written only when run succeeded; on failure
// the partial outputs are removed again.
func (b *builder) cached(ctx context.Context, id, title string, inputs []string, outputs []string, run func(context.Context) error) error {
	stamp := filepath.Join(b.root, "stamps", strings.ReplaceAll(id, "/", "_"))
	want := standin.Hash(inputs)
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want && allExist(outputs) {
		if b.env.Log != nil {
			b.env.Log.Debugf("%s: up to date in %s", title, b.root)
		}
		return nil
	}
	b.step(title)
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return fmt.Errorf("creating stamp folder: %w", err)
	}
	_ = os.Remove(stamp)
	if err := removeAll(outputs); err != nil {
		return err
	}
	if err := run(ctx); err != nil {
		_ = removeAll(outputs)
		return fmt.Errorf("%s: %w", title, err)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		return fmt.Errorf("writing stamp %s: %w", stamp, err)
	}
	return nil
}

func allExist(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func removeAll(paths []string) error {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing partial output %s: %w", p, err)
		}
	}
	return nil
}

// goEnv is the environment of every go command: module mode against the
// proxy, never a workspace.
var goEnv = []string{"GOFLAGS=-mod=mod", "GOWORK=off"}

// run runs a command, streaming its output when the user asked for it.
func (b *builder) run(ctx context.Context, dir string, env []string, args ...string) error {
	return execx.Run(ctx, execx.Cmd{Args: args, Dir: dir, Env: env, Stream: b.output()})
}

// goRun runs a go command in dir with goEnv plus env.
func (b *builder) goRun(ctx context.Context, dir string, env []string, args ...string) error {
	return b.run(ctx, dir, append(append([]string{}, goEnv...), env...), append([]string{"go"}, args...)...)
}

// copyTree copies a module folder (read-only in the module cache) to a fresh writable dst.
func (b *builder) copyTree(ctx context.Context, src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("removing %s: %w", dst, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	if err := b.run(ctx, "", nil, "cp", "-a", src+"/.", dst+"/"); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return b.run(ctx, "", nil, "chmod", "-R", "u+w", dst)
}
