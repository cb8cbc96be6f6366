//go:build ignore

// gen builds the supervisor (./program) for every architecture devenv
// carries it for and writes the binaries and bin/supervise.sum, the record
// of what they were built from. Run it with `go generate
// ./internal/supervise` (or `make generate`) after changing program/*.go;
// a unit test fails until then.
//
// The build is reproducible: static (CGO_ENABLED=0), -trimpath, no VCS
// stamp, no build ID, and every setting that changes the code fixed, so
// the same Go version gives byte-identical binaries on any machine.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// arches must match the go:embed patterns in supervise.go.
var arches = []string{"amd64", "arm64"}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "generating the supervisor:", err)
		os.Exit(1)
	}
}

func run() error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOAMD64=v1", "GOARM64=v8.0",
		"GOFLAGS=", "GOWORK=off", "GOEXPERIMENT=")
	ver, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		return fmt.Errorf("asking the go command for its version: %w", err)
	}
	sources, err := sourceHash("program")
	if err != nil {
		return err
	}
	sum := fmt.Sprintf("# Written by `go generate ./internal/supervise` (make generate); do not edit.\nsources %s\ngo %s\n",
		sources, strings.TrimSpace(string(ver)))
	for _, arch := range arches {
		name := "supervise-linux-" + arch
		out := filepath.Join("bin", name)
		cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=false",
			"-ldflags=-s -w -buildid=", "-o", out, "./program")
		cmd.Env = append(env, "GOARCH="+arch)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build for linux/%s: %w", arch, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		sum += fmt.Sprintf("%s %s\n", name, hex.EncodeToString(h[:]))
	}
	return os.WriteFile(filepath.Join("bin", "supervise.sum"), []byte(sum), 0o644)
}

// sourceHash hashes the .go files of dir by name and content. Keep it in
// step with sourceHash in embed_test.go.
func sourceHash(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(n), strconv.Itoa(len(b)))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
