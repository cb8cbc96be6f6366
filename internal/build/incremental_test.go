package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestIncrementalMatchesCold changes a context step by step, builds each
// step incrementally (only the paths a watcher would report) and cold (a
// new State), and wants the same image: tag, layers, context digest.
func TestIncrementalMatchesCold(t *testing.T) {
	dir := t.TempDir()
	at := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	writeFile(t, at("Dockerfile"), "FROM scratch\nCOPY app /app\nCOPY . /src/\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, at(".dockerignore"), "*.log\n")
	writeFile(t, at("app"), "binary v1")
	writeFile(t, at("src/a.txt"), "aaaa")
	writeFile(t, at("src/b.txt"), "bbbb")
	writeFile(t, at("src/sub/c.txt"), "cccc")
	// Enough entries for the COPY of . to be cut into several layers
	// (cut at 64 entries instead of chunkMin here).
	const cutAt = 64
	for i := range 5 * cutAt {
		writeFile(t, at(fmt.Sprintf("many/d%02d/f%04d.txt", i%20, i)), fmt.Sprint(i))
	}
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	ctx := context.Background()
	warm, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	warm.chunkMin = cutAt
	build := func(st *State, changed []string) Result {
		t.Helper()
		res, err := Image(ctx, nil, spec, ImageOptions{State: st, Live: true, Changed: changed})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := build(warm, nil)
	if n := len(first.Assembled.Layers); n < 5 {
		t.Fatalf("%d layers, want the big COPY cut into several", n)
	}
	keepTime := func(p string, write func()) {
		fi, err := os.Stat(at(p))
		if err != nil {
			t.Fatal(err)
		}
		write()
		if err := os.Chtimes(at(p), fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		change  func()
		changed []string
		same    bool // the image stays what it was
		patch   bool // assembled from the last assembly's entries (see assembleMemo)
	}{
		{"edit, size and time kept", func() { keepTime("src/a.txt", func() { writeFile(t, at("src/a.txt"), "AAAA") }) }, []string{"src/a.txt"}, false, true},
		{"edit in a big folder", func() { writeFile(t, at("many/d07/f0007.txt"), "seven") }, []string{"many/d07/f0007.txt"}, false, true},
		{"edit of a file two COPYs take", func() { writeFile(t, at("app"), "binary v2") }, []string{"app"}, false, true},
		{"add a file", func() { writeFile(t, at("src/new.txt"), "new") }, []string{"src/new.txt"}, false, false},
		{"add a file to a big folder", func() { writeFile(t, at("many/d01/zz.txt"), "zz") }, []string{"many/d01/zz.txt"}, false, false},
		{"delete a file", func() { must(os.Remove(at("src/b.txt"))) }, []string{"src/b.txt"}, false, false},
		{"add a folder (moved in: only it is reported)", func() {
			tmp := t.TempDir()
			writeFile(t, filepath.Join(tmp, "x", "y.txt"), "y")
			must(os.Rename(filepath.Join(tmp, "x"), at("newdir")))
		}, []string{"newdir"}, false, false},
		{"delete a folder", func() { must(os.RemoveAll(at("src/sub"))) }, []string{"src/sub"}, false, false},
		{"delete a big folder", func() { must(os.RemoveAll(at("many/d03"))) }, []string{"many/d03"}, false, false},
		{"chmod", func() { must(os.Chmod(at("src/a.txt"), 0o755)) }, []string{"src/a.txt"}, false, false},
		{"a .dockerignore'd file", func() { writeFile(t, at("x.log"), "noise") }, []string{"x.log"}, true, true},
		{"a symbolic link", func() { must(os.Symlink("a.txt", at("src/link"))) }, []string{"src/link"}, false, false},
		{"a symbolic link retargeted", func() {
			must(os.Remove(at("src/link")))
			must(os.Symlink("new.txt", at("src/link")))
		}, []string{"src/link"}, false, false},
		{"a file replaced by a folder", func() {
			must(os.Remove(at("src/new.txt")))
			writeFile(t, at("src/new.txt/inner.txt"), "inner")
		}, []string{"src/new.txt", "src/new.txt/inner.txt"}, false, false},
		{"the .dockerignore", func() { writeFile(t, at(".dockerignore"), "*.log\nmany/d0*\n") }, []string{".dockerignore"}, false, false},
		{"nothing", func() {}, []string{"src/a.txt"}, true, true},
		{"an edit after all that", func() { writeFile(t, at("app"), "binary v3, longer") }, []string{"app"}, false, true},
		{"two edits, one in a folder reported whole", func() {
			writeFile(t, at("src/a.txt"), "AAAA again")
			writeFile(t, at("many/d15/f0015.txt"), "fifteen")
		}, []string{"src/a.txt", "many/d15"}, false, true},
	}
	prev := first
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			patches := warm.contextCache(spec.Service).patches
			inc := build(warm, tc.changed)
			if patched := warm.contextCache(spec.Service).patches > patches; patched != tc.patch {
				t.Errorf("assembled from the last assembly's entries: %v, want %v", patched, tc.patch)
			}
			cold, err := LoadState(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cold.chunkMin = cutAt
			want := build(cold, nil)
			if inc.ID != want.ID || inc.Ref != want.Ref || inc.ContextDigest != want.ContextDigest {
				t.Errorf("incremental: %s %s\ncold:        %s %s", inc.Ref, inc.ContextDigest, want.Ref, want.ContextDigest)
			}
			if got, w := diffIDs(inc.Assembled), diffIDs(want.Assembled); !slices.Equal(got, w) {
				t.Errorf("layers differ:\nincremental %v\ncold        %v", got, w)
			}
			if (inc.ID == prev.ID) != tc.same {
				t.Errorf("image unchanged = %v, want %v", inc.ID == prev.ID, tc.same)
			}
			// What an engine build sends hashes the same.
			data, dfName, _, err := buildContext(spec, ContextOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d, err := contextDigestOfTar(data, dfName); err != nil || d != inc.ContextDigest {
				t.Errorf("the context tar's digest is %s (%v), the build's %s", d, err, inc.ContextDigest)
			}
			// The fingerprint from the scan is the walk's.
			walked, err := fingerprint(spec, ContextOptions{}, "", true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := warm.image(spec.Service); m.Key != walked {
				t.Errorf("fingerprint from the scan %s, from a walk %s", m.Key, walked)
			}
			checkSrc(t, dir, inc.Assembled)
			prev = inc
		})
	}
}

func diffIDs(a *Assembled) []string {
	var ids []string
	for _, l := range a.Layers {
		ids = append(ids, l.DiffID)
	}
	return ids
}

// checkSrc wants the image's /src to hold what the context holds (less
// *.log and .dockerignore'd folders), content, modes and links.
func checkSrc(t *testing.T, dir string, a *Assembled) {
	t.Helper()
	got := map[string]string{}
	for _, l := range a.Layers {
		r, err := l.open()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name, ok := strings.CutPrefix(strings.TrimSuffix(h.Name, "/"), "src/")
			if !ok {
				continue
			}
			b, _ := io.ReadAll(tr)
			got[name] = fmt.Sprintf("%c %o %s %s", h.Typeflag, h.Mode, h.Linkname, b)
		}
		r.Close()
	}
	pm, err := dockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if ex, _ := pm.MatchesOrParentMatches(rel); ex {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			want[rel] = fmt.Sprintf("%c %o  ", tar.TypeDir, fi.Mode().Perm())
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			want[rel] = fmt.Sprintf("%c %o %s ", tar.TypeSymlink, 0o777, l)
		default:
			b, _ := os.ReadFile(p)
			want[rel] = fmt.Sprintf("%c %o  %s", tar.TypeReg, fi.Mode().Perm(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("/src/%s = %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("/src/%s is in the image, not in the context", k)
		}
	}
}

// TestWalkCompare wants filepath.WalkDir's order.
func TestWalkCompare(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a/b", "a.txt", "a-b/c", "ab", "a/b.c/d", "a/bc", "b"} {
		writeFile(t, filepath.Join(dir, p), "x")
	}
	var walked []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			walked = append(walked, filepath.ToSlash(rel))
		}
		return err
	})
	sorted := slices.Clone(walked)
	slices.Reverse(sorted)
	slices.SortFunc(sorted, walkCompare)
	if !slices.Equal(sorted, walked) {
		t.Errorf("walkCompare sorts %v, WalkDir visits %v", sorted, walked)
	}
}

// TestIncrementalRereadsReported: a reported file is read again even with
// its size and time unchanged; an unreported change waits for a cold build.
func TestIncrementalRereadsReported(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY . /app\n")
	writeFile(t, filepath.Join(dir, "a.txt"), "aaaa")
	writeFile(t, filepath.Join(dir, "b.txt"), "bbbb")
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"a.txt", "b.txt"} {
		if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	st, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	build := func(changed []string) string {
		t.Helper()
		res, err := Image(context.Background(), nil, spec, ImageOptions{State: st, Changed: changed})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	v1 := build(nil)
	// Without a State (layers in memory) a build gives the same image.
	if mem, err := Image(context.Background(), nil, spec, ImageOptions{}); err != nil || mem.ID != v1 {
		t.Errorf("without State: %s (%v), with: %s", mem.ID, err, v1)
	}
	rewrite := func(name, content string) {
		writeFile(t, filepath.Join(dir, name), content)
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	rewrite("b.txt", "BBBB") // not reported
	if v := build([]string{"a.txt"}); v != v1 {
		t.Errorf("an unreported change was seen by an incremental build")
	}
	rewrite("a.txt", "AAAA")
	v2 := build([]string{"a.txt"})
	if v2 == v1 {
		t.Errorf("a reported file with its size and time kept was not read again")
	}
	// A new process (a new State) reads every file.
	if st, err = LoadState(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if v3 := build(nil); v3 == v2 {
		t.Errorf("a cold build missed a file rewritten with its size and time kept")
	}
}

// TestChunkedCopyKeepsBaseFolders: a COPY cut into several layers restates
// the folders above each layer's first entry as the base image has them
// (/srv/data 1000:1000 0750 in the synthetic base), and a rebuild after
// one change, reusing the last layers, gives the cold build's layers.
// (TestIncrementalMatchesCold cannot take a base: Image without Docker
// assembles FROM scratch only.)
func TestChunkedCopyKeepsBaseFolders(t *testing.T) {
	const cutAt = 16
	files := func(changed string) map[string]ctxEntry {
		dir := func(name string) ctxEntry {
			return ctxEntry{hdr: &tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}}
		}
		m := map[string]ctxEntry{"many": dir("many")}
		for i := range 10 * cutAt {
			d := fmt.Sprintf("many/d%02d", i%8)
			m[d] = dir(d)
			name := fmt.Sprintf("%s/f%04d.txt", d, i)
			data := []byte(fmt.Sprint(i))
			if name == changed {
				data = []byte("changed")
			}
			m[name] = ctxEntry{hdr: &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}, data: data}
		}
		return m
	}
	noDirs := func(string) (bool, error) { return false, nil }
	build := func(c *contextCache, changed string) []Layer {
		t.Helper()
		f := syntheticFolders(t)
		parent := func(p string) (*tar.Header, error) { return f.header(context.Background(), p) }
		out, err := copyLayer(files(changed), step{line: 2, op: "copy", args: []string{"many", "/srv/data/many/"}}, "/", "Dockerfile:2", "ctx", noDirs, parent)
		if err != nil {
			t.Fatal(err)
		}
		next := map[[sha256.Size]byte]*chunk{}
		ls, _, err := c.copyLayers(out, "", next)
		if err != nil {
			t.Fatal(err)
		}
		c.chunks = next
		return ls
	}
	ids := func(ls []Layer) []string {
		var s []string
		for _, l := range ls {
			s = append(s, l.DiffID)
		}
		return s
	}
	warm := &contextCache{chunkMin: cutAt}
	first := build(warm, "")
	if len(first) < 3 {
		t.Fatalf("%d layers, want the COPY cut into several", len(first))
	}
	for i, l := range first {
		got := layerHeaders(t, l.Data)
		for name, w := range map[string]struct {
			mode     int64
			uid, gid int
		}{"srv/": {0o755, 0, 0}, "srv/data/": {0o750, 1000, 1000}} {
			h := got[name]
			if h == nil || h.Typeflag != tar.TypeDir || h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.gid || !h.ModTime.Equal(baseTime) {
				t.Errorf("layer %d: %s is %+v, want the base's folder %+v", i, name, h, w)
			}
		}
	}
	const changed = "many/d03/f0083.txt"
	inc := build(warm, changed)
	cold := build(&contextCache{chunkMin: cutAt}, changed)
	if !slices.Equal(ids(inc), ids(cold)) {
		t.Errorf("layers differ:\nincremental %v\ncold        %v", ids(inc), ids(cold))
	}
	rewritten := 0
	for i := range min(len(inc), len(first)) {
		if inc[i].DiffID != first[i].DiffID {
			rewritten++
		}
	}
	if len(inc) != len(first) || rewritten != 1 {
		t.Errorf("%d of %d layers rewritten (was %d layers), want 1", rewritten, len(inc), len(first))
	}
}
