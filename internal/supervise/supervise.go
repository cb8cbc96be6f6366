// Package supervise provides the supervisor that devenv puts into the
// images it updates in place (see program/main.go for what it does) and
// compiles it for an architecture with the Go toolchain, once per version.
package supervise

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/devenv-tool/devenv/internal/dirs"
)

//go:embed program/main.go
var source []byte

// Path is where the supervisor lives in an image; StateFile is where it
// writes its state.
const (
	Path      = "/.devenv/supervise"
	StateFile = "/.devenv/state"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Binary returns the supervisor compiled for linux/arch (static, no cgo).
// It is compiled with the go command on PATH into devenv's cache folder
// (internal/dirs) the first time, then read from there. Without a go command it returns an
// error saying so: devenv then updates images the slower way.
func Binary(ctx context.Context, arch string) ([]byte, error) {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[arch]; ok {
		return b, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("the go command, which compiles devenv's supervisor, is not in PATH: install Go 1.22 or newer (until then saves swap images, which is slower)")
	}
	ver, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("asking the go command for its version: %w", err)
	}
	sum := sha256.Sum256(append(append(source, ver...), arch...))
	// Never a shared folder such as /tmp: this binary goes into every image.
	dir, err := dirs.Cache()
	if err != nil {
		return nil, fmt.Errorf("finding a folder for the live-update supervisor: %w", err)
	}
	out := filepath.Join(dir, "supervise-"+arch+"-"+hex.EncodeToString(sum[:8]))
	if b, err := os.ReadFile(out); err == nil && len(b) > 0 {
		built[arch] = b
		return b, nil
	}
	src, err := os.MkdirTemp("", "devenv-supervise-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module devenv.local/supervise\n\ngo 1.22\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), source, 0o644); err != nil {
		return nil, err
	}
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compiling the live-update supervisor: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	built[arch] = b
	return b, nil
}
