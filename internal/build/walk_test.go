package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// walkTestTree writes a context with what a walk must get right: nested
// folders (enough for several goroutines), symbolic links (to a file, to
// a folder, dangling), a .git folder, a .dockerignore that excludes
// folders whole and re-includes files below an excluded one, odd names
// and modes.
func walkTestTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	at := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	writeFile(t, at("Dockerfile"), "FROM scratch\nCOPY . /\n")
	writeFile(t, at(".dockerignore"), "logs\n*.tmp\nbuild/**\n!build/keep/*.txt\n")
	writeFile(t, at("app"), "binary")
	writeFile(t, at("a.tmp"), "tmp")
	writeFile(t, at("logs/x.log"), "1")
	writeFile(t, at("build/out.o"), "o")
	writeFile(t, at("build/keep/a.txt"), "kept")
	writeFile(t, at("build/keep/b.bin"), "not kept")
	writeFile(t, at(".git/HEAD"), "ref: refs/heads/main\n")
	writeFile(t, at("src/sp ace/\"quoted\" ünï.txt"), "x")
	writeFile(t, at("src/exec.sh"), "#!/bin/sh\n")
	if err := os.Chmod(at("src/exec.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		writeFile(t, at(fmt.Sprintf("many/d%02d/e%d/f%03d.txt", i%30, i%3, i)), fmt.Sprint(i))
	}
	if err := os.MkdirAll(at("empty/inner"), 0o750); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"src/link": "exec.sh", "dirlink": "src", "dangling": "nowhere/at/all"} {
		if err := os.Symlink(target, at(link)); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Unix(1_600_000_000, 123456789)
	if err := os.Chtimes(at("app"), old, old); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serialEntries is what walkTree must return, read as before it:
// filepath.WalkDir, DirEntry.Info and os.Readlink, with the same choice
// of paths.
func serialEntries(t *testing.T, root string, filter treeFilter) []treeEntry {
	t.Helper()
	var out []treeEntry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		keep, descend := []bool{false}, []bool{d.IsDir()}
		if err := filter([]string{rel}, []bool{d.IsDir()}, keep, descend); err != nil {
			return err
		}
		if keep[0] {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			e := treeEntry{rel: rel, mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
			if e.mode&fs.ModeSymlink != 0 {
				if e.link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			out = append(out, e)
		}
		if d.IsDir() && !keep[0] && !descend[0] {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameEntries(t *testing.T, got, want []treeEntry) {
	t.Helper()
	eq := func(a, b treeEntry) bool {
		return a.rel == b.rel && a.mode == b.mode && a.size == b.size && a.mtime.Equal(b.mtime) && a.link == b.link
	}
	if !slices.EqualFunc(got, want, eq) {
		t.Errorf("got %d entries, want %d", len(got), len(want))
		for i := range max(len(got), len(want)) {
			var g, w treeEntry
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !eq(g, w) {
				t.Errorf("first difference at %d: got %+v, want %+v", i, g, w)
				break
			}
		}
	}
}

func TestWalkTreeMatchesWalkDir(t *testing.T) {
	dir := walkTestTree(t)
	pm, err := dockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := inputsFilter(Spec{Context: dir, Watch: []string{"src", "many/d0*", "build"}, Ignore: []string{"many/d01", "build/**", "!build/keep"}})
	if err != nil {
		t.Fatal(err)
	}
	everything, err := inputsFilter(Spec{Context: dir})
	if err != nil {
		t.Fatal(err)
	}
	for name, filter := range map[string]func() treeFilter{
		"context":            func() treeFilter { return contextFilter("Dockerfile", pm) },
		"context, no ignore": func() treeFilter { return contextFilter("Dockerfile", nil) },
		"prebuild inputs":    func() treeFilter { return inputs },
		"all inputs":         func() treeFilter { return everything },
	} {
		want := serialEntries(t, dir, filter())
		if len(want) == 0 {
			t.Fatalf("%s: the serial walk found nothing", name)
		}
		for _, workers := range []int{1, 2, 8} {
			t.Run(fmt.Sprintf("%s/%d", name, workers), func(t *testing.T) {
				got, err := walkTree(dir, workers, filter())
				if err != nil {
					t.Fatal(err)
				}
				sameEntries(t, got, want)
			})
		}
	}
	// What the context sends: the re-included file, not its neighbour.
	got, err := walkTree(dir, 8, contextFilter("Dockerfile", pm))
	if err != nil {
		t.Fatal(err)
	}
	rels := map[string]bool{}
	for _, e := range got {
		rels[e.rel] = true
	}
	for rel, want := range map[string]bool{"build/keep/a.txt": true, "build/keep/b.bin": false, "logs/x.log": false, "a.tmp": false, "dangling": true, ".git/HEAD": true, "Dockerfile": true} {
		if rels[rel] != want {
			t.Errorf("%s reported: %v, want %v", rel, rels[rel], want)
		}
	}
}

func TestWalkTreeErrors(t *testing.T) {
	none := func(rels []string, dirs, keep, descend []bool) error { return nil }
	if _, err := walkTree(filepath.Join(t.TempDir(), "missing"), 0, none); err == nil {
		t.Error("a missing root gave no error")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a", "b"), "x")
	stop := fmt.Errorf("stop")
	_, err := walkTree(dir, 2, func(rels []string, dirs, keep, descend []bool) error {
		if slices.Contains(rels, "a/b") {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("got %v, want the filter's error", err)
	}
}

// TestFingerprintParallelScan wants the fingerprint made from a full
// scan (walkTree, in parallel) to be the one made by walking the context
// one path at a time, and the prebuild's inputs hash to be what the
// serial walk and fmt made of them.
func TestFingerprintParallelScan(t *testing.T) {
	dir := walkTestTree(t)
	spec := Spec{Service: "s", Project: "p", Context: dir, Prebuild: []string{"true"}, Ignore: []string{"many/d02"}}
	serial, err := fingerprint(spec, ContextOptions{}, "sha256:base", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := st.contextCache(spec.Service)
	if err := c.update(spec, "Dockerfile", nil); err != nil {
		t.Fatal(err)
	}
	scanned, err := fingerprint(spec, ContextOptions{}, "sha256:base", true, c)
	if err != nil {
		t.Fatal(err)
	}
	if scanned != serial {
		t.Errorf("fingerprint of the scan %s, of the serial walk %s", scanned, serial)
	}
	// Again, from the kept lines.
	if again, _ := fingerprint(spec, ContextOptions{}, "sha256:base", true, c); again != serial {
		t.Errorf("second fingerprint of the scan %s, want %s", again, serial)
	}

	filter, err := inputsFilter(spec)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "cmd %q\n", spec.Prebuild)
	for _, e := range serialEntries(t, dir, filter) {
		fmt.Fprintf(h, "%s %d %o %d\n", e.rel, e.size, e.mode, e.mtime.UnixNano())
	}
	got, err := inputsHash(spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("inputs hash %s, want %s (what fmt made of the serial walk)", got, want)
	}
}

func TestAppendFingerprintLine(t *testing.T) {
	for _, tc := range []struct {
		rel, link string
		size      int64
		mode      fs.FileMode
		mtime     int64
	}{
		{"app", "", 6, 0o644, 1_600_000_000_123_456_789},
		{"src/sp ace/\"quoted\" ünï.txt", "", 0, 0o600, -1},
		{"bad\xffutf8\ttab\\", "../x\n", 1 << 40, fs.ModeSymlink | 0o777, 0},
		{"d", "", 4096, fs.ModeDir | fs.ModeSetgid | fs.ModeSticky | 0o2755, 7},
	} {
		want := fmt.Appendf(nil, "%q %d %o %d %q\n", tc.rel, tc.size, tc.mode, tc.mtime, tc.link)
		if got := appendFingerprintLine([]byte("x"), tc.rel, tc.size, tc.mode, tc.mtime, tc.link); string(got) != "x"+string(want) {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestWalkTreesMatchesEach wants one walk with two filters to give what
// two walks give, also where one filter looks into a folder the other
// leaves out (.git, excluded folders).
func TestWalkTreesMatchesEach(t *testing.T) {
	dir := walkTestTree(t)
	pm, err := dockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := inputsFilter(Spec{Context: dir, Ignore: []string{"many/d01", "src/**"}})
	if err != nil {
		t.Fatal(err)
	}
	both, err := walkTrees(dir, 4, inputs, contextFilter("Dockerfile", pm))
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, both[0], serialEntries(t, dir, inputs))
	sameEntries(t, both[1], serialEntries(t, dir, contextFilter("Dockerfile", pm)))
}

// TestPrebuildWalkServesTheScan: a skipped prebuild's walk is the next
// full scan's (the same fingerprint as a scan of its own), once, and not
// when the .dockerignore changed since.
func TestPrebuildWalkServesTheScan(t *testing.T) {
	dir := walkTestTree(t)
	spec := Spec{Service: "s", Project: "p", Context: dir, Prebuild: []string{"true"}}
	st, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if ran, err := Prebuild(ctx, spec, nil, st); err != nil || !ran {
		t.Fatalf("first prebuild: ran %v, %v", ran, err)
	}
	if w := st.takeWalk("s"); w != nil {
		t.Error("a prebuild that ran kept its walk")
	}
	want, err := fingerprint(spec, ContextOptions{}, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	scan := func() string {
		t.Helper()
		c := &contextCache{full: true, chunkMin: chunkMin, walked: st.takeWalk("s")}
		if err := c.update(spec, "Dockerfile", nil); err != nil {
			t.Fatal(err)
		}
		k, err := fingerprint(spec, ContextOptions{}, "", false, c)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if ran, err := Prebuild(ctx, spec, nil, st); err != nil || ran {
		t.Fatalf("second prebuild: ran %v, %v", ran, err)
	}
	st.mu.Lock()
	w := st.walks["s"]
	st.mu.Unlock()
	if w == nil || len(w.ents) == 0 {
		t.Fatal("a skipped prebuild kept no walk of the context")
	}
	if got := scan(); got != want {
		t.Errorf("fingerprint from the prebuild's walk %s, want %s", got, want)
	}
	if st.takeWalk("s") != nil {
		t.Error("the walk was kept after a scan took it")
	}
	// A walk filtered by another .dockerignore is not taken.
	if ran, err := Prebuild(ctx, spec, nil, st); err != nil || ran {
		t.Fatalf("third prebuild: ran %v, %v", ran, err)
	}
	writeFile(t, filepath.Join(dir, ".dockerignore"), "many\n")
	want, err = fingerprint(spec, ContextOptions{}, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := scan(); got != want {
		t.Errorf("after a .dockerignore change: fingerprint %s, want %s (a walk of the new context)", got, want)
	}
}
