package supervise

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sourceHash hashes the .go files of dir by name and content, as gen.go
// does.
func sourceHash(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(n), strconv.Itoa(len(b)))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readSum reads bin/supervise.sum: key -> value.
func readSum(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("bin", "supervise.sum"))
	if err != nil {
		t.Fatalf("%v: run `make generate`", err)
	}
	sum := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(k, "#") {
			sum[k] = v
		}
	}
	return sum
}

// TestEmbeddedBinariesCurrent fails when program/*.go changed after the
// binaries were generated, or when a binary is not the one generated.
func TestEmbeddedBinariesCurrent(t *testing.T) {
	sum := readSum(t)
	if got := sourceHash(t, "program"); sum["sources"] != got {
		t.Fatalf("program/*.go changed since the embedded supervisor binaries were built (sources %s, recorded %s): run `make generate` and commit internal/supervise/bin",
			got, sum["sources"])
	}
	for _, arch := range Arches {
		name := "supervise-linux-" + arch
		b, err := Binary(context.Background(), arch)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		if got := hex.EncodeToString(h[:]); sum[name] != got {
			t.Errorf("bin/%s has sha256 %s, bin/supervise.sum records %s: run `make generate`", name, got, sum[name])
		}
	}
}

// TestGenerateReproducible builds the supervisor for the host the way
// gen.go does and compares it with the embedded one, when the go command
// is the version that built them.
func TestGenerateReproducible(t *testing.T) {
	if runtime.GOOS != "linux" || !slices.Contains(Arches, runtime.GOARCH) {
		t.Skip("no embedded supervisor for this host")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	ver, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := readSum(t)["go"]; strings.TrimSpace(string(ver)) != want {
		t.Skipf("the binaries were built with %s, the go command is %s", want, bytes.TrimSpace(ver))
	}
	out := filepath.Join(t.TempDir(), "supervise")
	cmd := exec.Command(goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "./program")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=", "GOWORK=off", "GOEXPERIMENT=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Binary(context.Background(), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("a rebuild with %s differs from the embedded binary: the build is not reproducible, or the binary is stale (run `make generate`)", bytes.TrimSpace(ver))
	}
}
