package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestContextCacheSurvivesProcess: a new State on the same folder (a new
// process) builds the same image as the last one without writing any
// layer again or reading the files; it sees an edit, writing only the
// layer holding it; a layer file gone or a damaged saved context costs
// only writing again, never a wrong image.
func TestContextCacheSurvivesProcess(t *testing.T) {
	dir := t.TempDir()
	at := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	writeFile(t, at("Dockerfile"), "FROM scratch\nCOPY app /app\nCOPY . /src/\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, at("app"), "binary v1")
	const cutAt = 64
	for i := range 5 * cutAt {
		writeFile(t, at(fmt.Sprintf("many/d%02d/f%04d.txt", i%20, i)), fmt.Sprint(i))
	}
	// Out of the racy window of the scans below.
	old := time.Now().Add(-time.Hour)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	}); err != nil {
		t.Fatal(err)
	}
	// edit rewrites a file with a time of its own, out of the racy window.
	edits := 0
	edit := func(p, content string) {
		t.Helper()
		edits++
		writeFile(t, at(p), content)
		if err := os.Chtimes(at(p), old.Add(time.Duration(edits)*time.Second), old.Add(time.Duration(edits)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	stateDir := t.TempDir()
	open := func() *State {
		t.Helper()
		st, err := LoadState(stateDir)
		if err != nil {
			t.Fatal(err)
		}
		st.chunkMin = cutAt
		return st
	}
	build := func(st *State) (Result, *contextCache) {
		t.Helper()
		res, err := Image(context.Background(), nil, spec, ImageOptions{State: st, Live: true})
		if err != nil {
			t.Fatal(err)
		}
		return res, st.contextCache(spec.Service)
	}
	cold := func() string {
		t.Helper()
		st, err := LoadState(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		st.chunkMin = cutAt
		res, err := Image(context.Background(), nil, spec, ImageOptions{State: st, Live: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	saved := func(st *State) time.Time {
		t.Helper()
		if err := st.SaveContexts(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(st.contextFile(spec.Service))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}

	st1 := open()
	r1, c1 := build(st1)
	if c1.written < 5 {
		t.Fatalf("first build wrote %d layers, want the big COPY cut into several", c1.written)
	}
	m1 := saved(st1)
	time.Sleep(10 * time.Millisecond)
	if m := saved(st1); !m.Equal(m1) {
		t.Errorf("an unchanged context was written again")
	}

	// A new process: the same image, nothing written, and the context's
	// files were not read (a file rewritten with its size and time kept
	// is not seen: only its stat is looked at).
	writeFile(t, at("many/d03/f0003.txt"), "X")
	if err := os.Chtimes(at("many/d03/f0003.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	st2 := open()
	r2, c2 := build(st2)
	if r2.ID != r1.ID || c2.written != 0 {
		t.Errorf("new process: image %s (want %s), %d layers written (want 0)", r2.ID, r1.ID, c2.written)
	}
	if m := saved(st2); !m.Equal(m1) {
		t.Errorf("a context loaded and found unchanged was written again")
	}
	writeFile(t, at("many/d03/f0003.txt"), "3") // as it was, time too
	if err := os.Chtimes(at("many/d03/f0003.txt"), old, old); err != nil {
		t.Fatal(err)
	}

	// An edit: seen by the next process, which writes only its layer.
	edit("many/d07/f0007.txt", "seven")
	st3 := open()
	r3, c3 := build(st3)
	if r3.ID == r1.ID {
		t.Errorf("an edit before a new process was not seen")
	}
	if c3.written != 1 {
		t.Errorf("an edit in one layer: %d layers written, want 1", c3.written)
	}
	if want := cold(); r3.ID != want {
		t.Errorf("after the edit: image %s, a cold build gives %s", r3.ID, want)
	}
	saved(st3)

	// A layer file gone: written again, same image.
	var gone string
	for _, l := range r3.Assembled.Layers {
		if l.Path != "" {
			gone = l.Path
		}
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	r4, c4 := build(open())
	if r4.ID != r3.ID || c4.written != 1 {
		t.Errorf("a layer file gone: image %s (want %s), %d written (want 1)", r4.ID, r3.ID, c4.written)
	}

	// A damaged saved context: ignored, everything written, same image.
	p := open().contextFile(spec.Service)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	r5, c5 := build(open())
	if r5.ID != r3.ID || c5.written < 5 {
		t.Errorf("a damaged saved context: image %s (want %s), %d written (want all)", r5.ID, r3.ID, c5.written)
	}
}

// TestPatchedWorkdirSeesCopiedFolders: a patched assembly (only contents
// changed) still tells a WORKDIR after a COPY the folders that COPY made
// (mode 0750 here), and gives the cold build's image.
func TestPatchedWorkdirSeesCopiedFolders(t *testing.T) {
	dir := t.TempDir()
	at := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	writeFile(t, at("Dockerfile"), "FROM scratch\nCOPY . /src/\nWORKDIR /src/sub/w\nCOPY app /app\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, at("app"), "v1")
	writeFile(t, at("sub/a.txt"), "a")
	if err := os.Chmod(at("sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	st, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Image(context.Background(), nil, spec, ImageOptions{State: st}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, at("sub/a.txt"), "b")
	warm, err := Image(context.Background(), nil, spec, ImageOptions{State: st, Changed: []string{"sub/a.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.contextCache(spec.Service).patches != 1 {
		t.Fatalf("the second build was not patched")
	}
	cold, err := Image(context.Background(), nil, spec, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if warm.ID != cold.ID {
		t.Errorf("patched image %s, cold %s", warm.ID, cold.ID)
	}
}

// TestFingerprintKeepsLittlePerChange: the fingerprint of a context where
// one file changed allocates about that file's line, not a fixed slab
// (each kept line holds its slab: 256 kB per changed file of every
// service had been kept for the life of a watching process).
func TestFingerprintKeepsLittlePerChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n")
	for i := range 50 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("f%02d.txt", i)), "x")
	}
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	c := &contextCache{full: true, chunkMin: chunkMin}
	if err := c.update(spec, "Dockerfile", nil); err != nil {
		t.Fatal(err)
	}
	first, err := fingerprint(spec, ContextOptions{}, "", false, c)
	if err != nil {
		t.Fatal(err)
	}
	c.files["f07.txt"].fp = nil // as a scan leaves a changed file
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	again, err := fingerprint(spec, ContextOptions{}, "", false, c)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("the fingerprint changed with its lines made again: %s, was %s", again, first)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<10 {
		t.Errorf("one changed line allocated %d bytes, want a few kB", n)
	}
}
