package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// startWatcher creates a watcher and closes it at the end of the test.
func startWatcher(t *testing.T, specs []Spec, opts Options) *Watcher {
	t.Helper()
	w, err := New(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// untilMarker collects batches until one reports marker for service svc. It
// fails after a generous deadline rather than sleeping a fixed time.
func untilMarker(t *testing.T, w *Watcher, svc, marker string) []Batch {
	t.Helper()
	var got []Batch
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-w.Events():
			got = append(got, b)
			if slices.Contains(b.Services[svc], marker) {
				return got
			}
		case err := <-w.Errors():
			t.Fatalf("watch error: %v", err)
		case <-deadline:
			t.Fatalf("no event for marker %s/%s within 20s; batches so far: %v", svc, marker, got)
		}
	}
}

func allPaths(bs []Batch, svc string) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Services[svc]...)
	}
	return out
}

func TestIntegrationWatchBurstOneBatchOneService(t *testing.T) {
	if testing.Short() {
		t.Skip("real fsnotify with the real clock; skipped with -short")
	}
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	writeFile(t, filepath.Join(a, "src", "keep"), "")
	writeFile(t, filepath.Join(b, "src", "keep"), "")
	w := startWatcher(t, []Spec{{Service: "a", Root: a}, {Service: "b", Root: b}}, Options{})

	start := time.Now()
	for i := range 1000 {
		writeFile(t, filepath.Join(a, "src", fmt.Sprintf("f%04d.txt", i)), "x")
	}
	writeFile(t, filepath.Join(a, "src", "marker"), "")
	got := untilMarker(t, w, "a", "src/marker")
	t.Logf("1,000 writes + marker -> %d batch(es) in %v", len(got), time.Since(start))
	if len(got) != 1 {
		t.Fatalf("got %d batches, want exactly 1", len(got))
	}
	if _, ok := got[0].Services["b"]; ok || len(got[0].Services) != 1 {
		t.Fatalf("batch routed to %v, want only service a", keys(got[0].Services))
	}
	if n := len(got[0].Services["a"]); n != 1001 {
		t.Fatalf("batch has %d paths, want 1001 (1,000 files + marker)", n)
	}
}

func keys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestIntegrationWatchIgnoresAndNewDirs(t *testing.T) {
	if testing.Short() {
		t.Skip("real fsnotify; skipped with -short")
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".dockerignore"), "node_modules\n*.log\n")
	writeFile(t, filepath.Join(root, ".gitignore"), "target/\n")
	writeFile(t, filepath.Join(root, "node_modules", "dep", "index.js"), "")
	writeFile(t, filepath.Join(root, "target", "classes", "A.class"), "")
	writeFile(t, filepath.Join(root, ".git", "HEAD"), "")
	cfg := filepath.Join(t.TempDir(), "devenv.yaml")
	writeFile(t, cfg, "namespace: x\n")
	w := startWatcher(t, []Spec{{Service: "svc", Root: root, Ignore: []string{"tmp/**"}}}, Options{Quiet: 50 * time.Millisecond, Files: []string{cfg}})

	dirs := w.WatchedDirs()
	for _, d := range []string{"node_modules", "node_modules/dep", "target", "target/classes", ".git"} {
		if slices.Contains(dirs, filepath.Join(root, d)) {
			t.Errorf("ignored directory %s is watched", d)
		}
	}
	if !slices.Contains(dirs, root) {
		t.Errorf("root not watched: %v", dirs)
	}

	ignored := []string{
		"node_modules/dep/new.js", "app.log", "target/app.jar", ".git/index",
		".main.go.swp", "main.go~", ".#main.go", "#main.go#", "4913", "Main.java___jb_tmp___", "x.tmp", "tmp/scratch",
	}
	for _, rel := range ignored {
		writeFile(t, filepath.Join(root, rel), "x")
	}
	writeFile(t, filepath.Join(root, "main.go"), "package main")
	// A new nested folder with a file written at once, before its watch can exist.
	writeFile(t, filepath.Join(root, "pkg", "deep", "er", "x.go"), "package er")
	writeFile(t, filepath.Join(root, "marker"), "")
	got := untilMarker(t, w, "svc", "marker")
	paths := allPaths(got, "svc")
	for _, rel := range ignored {
		if slices.Contains(paths, rel) {
			t.Errorf("ignored path %s was reported", rel)
		}
	}
	for _, rel := range []string{"main.go", "pkg/deep/er/x.go"} {
		if !slices.Contains(paths, rel) {
			t.Errorf("%s not reported; got %v", rel, paths)
		}
	}
	if !slices.Contains(w.WatchedDirs(), filepath.Join(root, "pkg", "deep", "er")) {
		t.Error("new nested directory pkg/deep/er is not watched")
	}
	// Later changes inside the new directory arrive through its own watch.
	writeFile(t, filepath.Join(root, "pkg", "deep", "er", "y.go"), "package er")
	writeFile(t, filepath.Join(root, "pkg", "deep", "er", "marker2"), "")
	got = untilMarker(t, w, "svc", "pkg/deep/er/marker2")
	if !slices.Contains(allPaths(got, "svc"), "pkg/deep/er/y.go") {
		t.Errorf("pkg/deep/er/y.go not reported: %v", got)
	}

	// The config file: editors replace it by rename.
	tmp := cfg + ".new"
	writeFile(t, tmp, "namespace: y\n")
	if err := os.Rename(tmp, cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-w.Events():
			if b.Config {
				return
			}
		case err := <-w.Errors():
			t.Fatal(err)
		case <-deadline:
			t.Fatal("no Config batch after devenv.yaml was replaced")
		}
	}
}

func TestIntegrationWatchOverlappingRootsAndPatterns(t *testing.T) {
	if testing.Short() {
		t.Skip("real fsnotify; skipped with -short")
	}
	proj := t.TempDir()
	svc := filepath.Join(proj, "svc")
	writeFile(t, filepath.Join(svc, "src", "A.java"), "")
	w := startWatcher(t, []Spec{
		{Service: "all", Root: proj},
		{Service: "java", Root: svc, Watch: []string{"src/**"}},
	}, Options{Quiet: 50 * time.Millisecond})
	writeFile(t, filepath.Join(svc, "src", "A.java"), "class A {}")
	writeFile(t, filepath.Join(svc, "README.md"), "docs")
	writeFile(t, filepath.Join(svc, "src", "marker"), "")
	got := untilMarker(t, w, "java", "src/marker")
	// "all" sees the same marker in the same or an earlier batch.
	javaPaths, allP := allPaths(got, "java"), allPaths(got, "all")
	if !slices.Contains(javaPaths, "src/A.java") || slices.Contains(javaPaths, "README.md") {
		t.Errorf("java got %v, want src/A.java and not README.md", javaPaths)
	}
	for _, want := range []string{"svc/src/A.java", "svc/README.md", "svc/src/marker"} {
		if !slices.Contains(allP, want) {
			t.Errorf("all got %v, missing %s", allP, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{{Service: "", Root: dir}}, "no service name"},
		{[]Spec{{Service: "a", Root: "rel/path"}}, "absolute"},
		{[]Spec{{Service: "a", Root: filepath.Join(dir, "missing")}}, `service "a": root`},
		{[]Spec{{Service: "a", Root: dir}, {Service: "a", Root: dir}}, "listed twice"},
	}
	for _, tt := range tests {
		w, err := New(tt.specs, Options{})
		if err == nil {
			w.Close()
			t.Errorf("New(%v) succeeded, want error containing %q", tt.specs, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%v) = %v, want error containing %q", tt.specs, err, tt.want)
		}
	}
}

func TestCloseEndsChannels(t *testing.T) {
	w, err := New([]Spec{{Service: "a", Root: t.TempDir()}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-w.Events(); ok {
		t.Error("Events() not closed after Close")
	}
	if _, ok := <-w.Errors(); ok {
		t.Error("Errors() not closed after Close")
	}
	_ = w.Close() // a second Close is harmless
}

func TestOverflowRebuildsEverything(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	writeFile(t, filepath.Join(a, "x"), "")
	writeFile(t, filepath.Join(b, "x"), "")
	cfg := filepath.Join(base, "devenv.yaml")
	writeFile(t, cfg, "")
	w := startWatcher(t, []Spec{{Service: "a", Root: a}, {Service: "b", Root: b}}, Options{Quiet: 10 * time.Millisecond, Files: []string{cfg}})
	w.fsError(fmt.Errorf("reading events: %w", fsnotify.ErrEventOverflow))
	select {
	case err := <-w.Errors():
		if !errors.Is(err, ErrInotifyLimit) || !strings.Contains(err.Error(), "sudo sysctl fs.inotify.max_queued_events=") {
			t.Errorf("overflow error = %v, want ErrInotifyLimit and the sysctl to raise", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported for the overflow")
	}
	select {
	case got := <-w.Events():
		if !got.Overflow || !got.Config || len(got.Services) != 2 {
			t.Errorf("batch after overflow = %+v, want Overflow, Config and both services", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no batch after the overflow")
	}
}
