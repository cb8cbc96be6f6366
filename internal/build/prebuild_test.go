package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/log"
)

func TestPrebuildSkipsWhenInputsUnchanged(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "src", "a.txt"), "a")
	writeFile(t, filepath.Join(dir, "README.md"), "docs")
	// The command counts its runs and writes an output the next hash sees.
	spec := Spec{
		Service:  "svc",
		Context:  dir,
		Prebuild: []string{"sh", "-c", "echo run >> runs.log; mkdir -p target; cp src/a.txt target/a.out"},
		Ignore:   []string{"runs.log"},
	}
	stateDir := t.TempDir()
	state, err := LoadState(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "runs.log"))
		return strings.Count(string(b), "run")
	}
	step := func(name string, wantRan bool) {
		t.Helper()
		ran, err := Prebuild(ctx, spec, log.Nop(), state)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ran != wantRan {
			t.Fatalf("%s: ran = %v, want %v", name, ran, wantRan)
		}
	}
	step("first run", true)
	step("unchanged", false)
	if runs() != 1 {
		t.Fatalf("command ran %d times, want 1", runs())
	}
	// The state survives a restart.
	state, err = LoadState(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	step("unchanged after reload", false)
	// A changed input reruns it.
	later := time.Now().Add(time.Minute)
	writeFile(t, filepath.Join(dir, "src", "a.txt"), "a2")
	os.Chtimes(filepath.Join(dir, "src", "a.txt"), later, later)
	step("changed input", true)
	step("unchanged again", false)
	// Deleting its output reruns it too.
	if err := os.RemoveAll(filepath.Join(dir, "target")); err != nil {
		t.Fatal(err)
	}
	step("output deleted", true)
	// With Watch set, files outside it do not matter.
	spec.Watch = []string{"src/**", "target/**"}
	step("watch patterns changed the set", true)
	writeFile(t, filepath.Join(dir, "README.md"), "more docs")
	step("unwatched file changed", false)
	// A different command reruns.
	spec.Prebuild = append(spec.Prebuild[:2:2], spec.Prebuild[2]+"; true")
	step("command changed", true)
	if runs() != 5 {
		t.Errorf("command ran %d times, want 5", runs())
	}
}

func TestPrebuildFailureShowsOutputAndNamesService(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	spec := Spec{Service: "account", Context: dir, Prebuild: []string{"sh", "-c", "echo compiling; echo 'Main.java:3: error' >&2; exit 3"}}
	state, _ := LoadState(t.TempDir())
	ran, err := Prebuild(context.Background(), spec, log.New(&out, false), state)
	if err == nil || !ran {
		t.Fatalf("ran %v, err %v; want a failure", ran, err)
	}
	for _, want := range []string{`service "account"`, "sh -c", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	for _, want := range []string{"[account] compiling\n", "[account] Main.java:3: error\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q does not contain %q", out.String(), want)
		}
	}
	// A failure is not recorded: the next call runs again.
	if ran, _ := Prebuild(context.Background(), spec, log.Nop(), state); !ran {
		t.Error("prebuild skipped after a failure")
	}
}

func TestPrebuildStreamsWhenVerbose(t *testing.T) {
	var out bytes.Buffer
	spec := Spec{Service: "tm", Context: t.TempDir(), Prebuild: []string{"sh", "-c", "echo one; printf two"}}
	if _, err := Prebuild(context.Background(), spec, log.New(&out, true), nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "[tm] one\n[tm] two\n") {
		t.Errorf("verbose output = %q, want prefixed lines", out.String())
	}
	out.Reset()
	if _, err := Prebuild(context.Background(), spec, log.New(&out, false), nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "[tm] one") {
		t.Errorf("quiet output shows the command's output on success: %q", out.String())
	}
}

func TestLoadStateDamagedFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, stateFile), "{not json")
	s, err := LoadState(dir)
	if err != nil || len(s.Prebuild) != 0 {
		t.Fatalf("LoadState = %v, %v; want an empty state", s, err)
	}
}

func TestStateDir(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DEVENV_STATE", "")
	t.Setenv("XDG_STATE_HOME", state)
	a, err := StateDir("/work/proj")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := StateDir("/other/proj")
	if !strings.HasPrefix(a, state+"/devenv/projects/proj-") || a == b {
		t.Errorf("StateDir = %q and %q: want distinct folders under %s/devenv/projects", a, b, state)
	}
	own := filepath.Join(t.TempDir(), "state")
	t.Setenv("DEVENV_STATE", own)
	if c, err := StateDir("/work/proj"); err != nil || !strings.HasPrefix(c, own+"/projects/proj-") {
		t.Errorf("with DEVENV_STATE: StateDir = %q, %v; want it under %s", c, err, own)
	}
}

// benchTree makes n files totalling about size bytes.
func benchTree(b *testing.B, n, size int) string {
	dir := b.TempDir()
	chunk := bytes.Repeat([]byte("x"), size/n)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, chunk, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkInputsHash compares hashing metadata (what Prebuild does) with
// hashing contents, on 2,000 files and 50 MB.
func BenchmarkInputsHash(b *testing.B) {
	dir := benchTree(b, 2000, 50<<20)
	spec := Spec{Service: "svc", Context: dir, Prebuild: []string{"true"}}
	b.Run("metadata", func(b *testing.B) {
		for b.Loop() {
			if _, err := inputsHash(spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("contents", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := Context(Spec{Service: "svc", Context: dir}, ContextOptions{Dockerfile: []byte("x")}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
