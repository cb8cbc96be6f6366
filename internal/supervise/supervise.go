package supervise

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Path is where the supervisor lives in an image; StateFile is where it
// writes its state.
const (
	Path      = "/.devenv/supervise"
	StateFile = "/.devenv/state"
)

// The binaries built by gen.go; one per entry of Arches.
//
//go:generate go run gen.go
//go:embed bin/supervise-linux-amd64 bin/supervise-linux-arm64
var binaries embed.FS

// Arches are the architectures (GOARCH names) devenv carries the
// supervisor for.
var Arches = []string{"amd64", "arm64"}

// ErrNoBinary is what the error of Binary for an architecture devenv
// carries no supervisor for matches (errors.Is).
var ErrNoBinary = errors.New("no live-update supervisor for this architecture")

// noBinaryError says which architecture has no supervisor, and what
// devenv has instead.
type noBinaryError struct{ arch string }

func (e noBinaryError) Error() string {
	which := "not for linux/" + e.arch + " images"
	if e.arch == "" {
		which = "and the image names no architecture"
	}
	return fmt.Sprintf("devenv carries its supervisor for linux/%s, %s (saves swap images instead, which is slower)",
		strings.Join(Arches, " and linux/"), which)
}

func (e noBinaryError) Is(target error) bool { return target == ErrNoBinary }

// Binary returns the supervisor for linux/arch (arch a GOARCH name such as
// an image config's "architecture": amd64, arm64), a static executable
// embedded in devenv. For any other architecture it returns an error
// matching ErrNoBinary that names it; devenv then updates images the
// slower way. ctx is not used: nothing is built or read from disk.
func Binary(_ context.Context, arch string) ([]byte, error) {
	if !slices.Contains(Arches, arch) {
		return nil, noBinaryError{arch: arch}
	}
	b, err := binaries.ReadFile("bin/supervise-linux-" + arch)
	if err != nil {
		return nil, fmt.Errorf("reading the embedded supervisor for linux/%s: %w", arch, err)
	}
	return b, nil
}
