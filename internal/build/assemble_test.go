package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// baseTime is the modification time of the synthetic base's folders.
var baseTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// tarOf is a tar of the given headers (no contents; regular files empty).
func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.ModTime.IsZero() {
			h.ModTime = baseTime
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode |= 0o40000 // as Docker writes folders (c_ISDIR)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirHdr(name string, mode int64, uid int) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: uid}
}

func fileHdr(name string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}
}

// syntheticLayers are the layers of a synthetic base image: /tmp at 1777,
// /srv/data owned by 1000 at 0750, /bin a link to usr/bin, and whiteouts,
// an opaque folder and a file replacing a folder in the upper layer.
func syntheticLayers(t *testing.T) [][]byte {
	return [][]byte{
		tarOf(t,
			dirHdr("./", 0o755, 0),
			dirHdr("./tmp/", 0o1777, 0),
			dirHdr("./srv/", 0o755, 0),
			dirHdr("./srv/data/", 0o700, 1000),
			&tar.Header{Name: "./bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin", Mode: 0o777},
			dirHdr("./usr/", 0o755, 0),
			dirHdr("./usr/bin/", 0o755, 0),
			fileHdr("./usr/bin/sh"),
			dirHdr("./opt/", 0o755, 0),
			dirHdr("./opt/old/", 0o755, 0),
			dirHdr("./opt/old/sub/", 0o755, 0),
			dirHdr("./var/", 0o755, 0),
			dirHdr("./var/cache/", 0o755, 0),
			dirHdr("./var/cache/x/", 0o755, 0),
			dirHdr("./home/", 0o755, 0),
			dirHdr("./home/u/", 0o700, 1001),
		),
		tarOf(t,
			dirHdr("srv/", 0o755, 0),
			dirHdr("srv/data/", 0o750, 1000), // upper layer wins
			fileHdr("srv/data/.keep"),
			dirHdr("opt/", 0o755, 0),
			fileHdr("opt/.wh.old"),
			dirHdr("var/cache/", 0o755, 0),
			fileHdr("var/cache/.wh..wh..opq"),
			dirHdr("var/cache/y/", 0o711, 0),
			fileHdr("home"), // a file where a folder was
		),
	}
}

// wantBase is the synthetic base's file system: folders, links, files.
func wantBase() map[string]fsMeta {
	d := func(mode int64, uid int) fsMeta {
		return fsMeta{Type: tar.TypeDir, Mode: mode, UID: uid, GID: uid, ModTime: baseTime}
	}
	fsys := map[string]fsMeta{
		"tmp":         d(0o1777, 0),
		"srv":         d(0o755, 0),
		"srv/data":    d(0o750, 1000),
		"bin":         {Type: tar.TypeSymlink, Mode: 0o777, ModTime: baseTime, Link: "usr/bin"},
		"usr":         d(0o755, 0),
		"usr/bin":     d(0o755, 0),
		"opt":         d(0o755, 0),
		"var":         d(0o755, 0),
		"var/cache":   d(0o755, 0),
		"var/cache/y": d(0o711, 0),
	}
	for _, p := range []string{"usr/bin/sh", "srv/data/.keep", "home"} {
		fsys[p] = fsMeta{Type: tar.TypeReg, Mode: 0o644, ModTime: baseTime}
	}
	return fsys
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// legacyArchive is a `docker save` archive as Docker before 25 writes it:
// <id>/layer.tar files, a repeated layer as a link to its first copy.
func legacyArchive(t *testing.T, layers [][]byte) []byte {
	t.Helper()
	empty := tarOf(t)
	var names []string
	var entries []*tar.Header
	var data [][]byte
	for i, l := range append(layers, empty) {
		n := string(rune('a'+i)) + "/layer.tar"
		names = append(names, n)
		entries = append(entries, &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(l))})
		data = append(data, l)
	}
	// The empty layer once more, as a link.
	names = append(names, "z/layer.tar")
	entries = append(entries, &tar.Header{Name: "z/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../" + names[len(layers)]})
	data = append(data, nil)
	m, _ := json.Marshal([]map[string]any{{"Config": "cfg.json", "Layers": names}})
	// The manifest first: the reader takes any order.
	entries = append([]*tar.Header{{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m))}}, entries...)
	data = append([][]byte{m}, data...)
	return archiveOf(t, entries, data)
}

// ociArchive is a `docker save` archive as Docker 25 and later writes it:
// blobs named by digest (a config among them), the first layer gzipped,
// manifest.json last.
func ociArchive(t *testing.T, layers [][]byte) []byte {
	t.Helper()
	var entries []*tar.Header
	var data [][]byte
	add := func(b []byte) string {
		n := "blobs/sha256/" + sha(b)
		entries = append(entries, &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		data = append(data, b)
		return n
	}
	add([]byte(`{"architecture":"amd64","os":"linux"}`))
	var names []string
	for i, l := range layers {
		if i == 0 {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(l)
			_ = zw.Close()
			l = z.Bytes()
		}
		names = append(names, add(l))
	}
	m, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/x", "Layers": names}})
	entries = append(entries, &tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m))})
	data = append(data, m)
	return archiveOf(t, entries, data)
}

func archiveOf(t *testing.T, hdrs []*tar.Header, data [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadBaseFolders: the base image's folders, links and files as its final
// file system has them (upper layers win, whiteouts and opaque folders
// remove, a file replaces a folder), from either `docker save` format.
func TestReadBaseFolders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		archive func(*testing.T, [][]byte) []byte
	}{
		{"docker-archive", legacyArchive},
		{"oci-layout", ociArchive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBaseFolders(bytes.NewReader(tc.archive(t, syntheticLayers(t))))
			if err != nil {
				t.Fatal(err)
			}
			want := wantBase()
			for _, k := range slices.Sorted(maps.Keys(want)) {
				if g, ok := got[k]; !ok {
					t.Errorf("%s: missing, want %+v", k, want[k])
				} else if g != want[k] {
					t.Errorf("%s: %+v, want %+v", k, g, want[k])
				}
			}
			for _, k := range slices.Sorted(maps.Keys(got)) {
				if _, ok := want[k]; !ok {
					t.Errorf("%s: listed (%+v), but not in the image", k, got[k])
				}
			}
		})
	}

	bad := []struct {
		name    string
		archive []byte
	}{
		{"no manifest", archiveOf(t, []*tar.Header{{Name: "a/layer.tar", Typeflag: tar.TypeReg, Size: 0}}, [][]byte{nil})},
		{"empty", nil},
	}
	m, _ := json.Marshal([]map[string]any{{"Layers": []string{"gone/layer.tar"}}})
	bad = append(bad, struct {
		name    string
		archive []byte
	}{"layer not in the archive", archiveOf(t, []*tar.Header{{Name: "manifest.json", Typeflag: tar.TypeReg, Size: int64(len(m))}}, [][]byte{m})})
	for _, tc := range bad {
		if _, err := readBaseFolders(bytes.NewReader(tc.archive)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// layerHeaders lists a layer's entries by name.
func layerHeaders(t *testing.T, layer []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

// copyLayerTar writes the entries of a COPY (see copyLayer) as its one
// layer, in memory.
func copyLayerTar(t *testing.T, out map[string]ctxEntry) []byte {
	t.Helper()
	c := &contextCache{chunkMin: chunkMin}
	ls, _, err := c.copyLayers(out, "", map[[sha256.Size]byte]*chunk{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 {
		t.Fatalf("%d layers, want 1", len(ls))
	}
	return ls[0].Data
}

// syntheticFolders is the folders of the synthetic base (read from its
// archive, as assemble reads Docker's) with nothing made yet.
func syntheticFolders(t *testing.T) *folders {
	t.Helper()
	base, err := readBaseFolders(bytes.NewReader(legacyArchive(t, syntheticLayers(t))))
	if err != nil {
		t.Fatal(err)
	}
	return &folders{made: map[string]fsMeta{}, base: func(context.Context) (map[string]fsMeta, error) { return base, nil }}
}

// TestCopyLayerKeepsBaseFolders: every folder a COPY's layer writes above
// its files restates the base image's folder (mode, owner, time), so that
// unpacking the layer changes none (/tmp stays 1777, /srv/data 1000:0750);
// a folder the base lacks is new: 0755, root.
func TestCopyLayerKeepsBaseFolders(t *testing.T) {
	files := map[string]ctxEntry{
		"app":      {hdr: &tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2}, data: []byte("hi")},
		"more.txt": {hdr: &tar.Header{Name: "more.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4}, data: []byte("more")},
	}
	noDirs := func(string) (bool, error) { return false, nil }
	type want struct {
		mode     int64
		uid, gid int
		mtime    time.Time
	}
	base := want{0o755, 0, 0, baseTime}
	fresh := want{0o755, 0, 0, epoch}
	for _, tc := range []struct {
		args []string
		want map[string]want // folder entries of the layer
		file string          // the copied file's entry
	}{
		{[]string{"app", "/tmp/app"}, map[string]want{"tmp/": {0o1777, 0, 0, baseTime}}, "tmp/app"},
		{[]string{"more.txt", "/srv/data/sub/"}, map[string]want{"srv/": base, "srv/data/": {0o750, 1000, 1000, baseTime}, "srv/data/sub/": fresh}, "srv/data/sub/more.txt"},
		{[]string{"app", "/new/deep/app"}, map[string]want{"new/": fresh, "new/deep/": fresh}, "new/deep/app"},
		{[]string{"app", "/var/cache/y/app"}, map[string]want{"var/": base, "var/cache/": base, "var/cache/y/": {0o711, 0, 0, baseTime}}, "var/cache/y/app"},
		// Removed from the base by a whiteout: new again.
		{[]string{"app", "/opt/old/app"}, map[string]want{"opt/": base, "opt/old/": fresh}, "opt/old/app"},
		// A file in the base where a folder was: new.
		{[]string{"app", "/home/u/app"}, map[string]want{"home/": fresh, "home/u/": fresh}, "home/u/app"},
	} {
		t.Run(tc.args[1], func(t *testing.T) {
			f := syntheticFolders(t)
			parent := func(p string) (*tar.Header, error) { return f.header(context.Background(), p) }
			out, err := copyLayer(files, step{line: 2, op: "copy", args: tc.args}, "/", "Dockerfile:2", "ctx", noDirs, parent)
			if err != nil {
				t.Fatal(err)
			}
			got := layerHeaders(t, copyLayerTar(t, out))
			if len(got) != len(tc.want)+1 {
				t.Errorf("entries %v, want %v and %s", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tc.want)), tc.file)
			}
			if h := got[tc.file]; h == nil || h.Typeflag != tar.TypeReg || h.Uid != 0 {
				t.Errorf("%s: %+v, want the copied file owned by root", tc.file, h)
			}
			for name, w := range tc.want {
				h := got[name]
				if h == nil {
					t.Errorf("%s: missing", name)
					continue
				}
				g := want{h.Mode, h.Uid, h.Gid, h.ModTime}
				if h.Typeflag != tar.TypeDir || g.mode != w.mode || g.uid != w.uid || g.gid != w.gid || !g.mtime.Equal(w.mtime) {
					t.Errorf("%s: type %c %+v, want a folder %+v", name, h.Typeflag, g, w)
				}
			}
		})
	}

	// A COPY through a symbolic link of the base (/bin -> usr/bin) goes to
	// the engine's builder, which follows it; the layer must not put a
	// folder where the link is.
	f := syntheticFolders(t)
	parent := func(p string) (*tar.Header, error) { return f.header(context.Background(), p) }
	_, err := copyLayer(files, step{line: 3, op: "copy", args: []string{"app", "/bin/app"}}, "/", "Dockerfile:3", "ctx", noDirs, parent)
	if !errors.Is(err, errNotSimple) {
		t.Errorf("COPY app /bin/app over a link: err = %v, want errNotSimple", err)
	}
}

// TestLaterLayersKeepMadeFolders: a folder an earlier layer of devenv's
// made keeps its mode and owner in the later layers (made wins over the
// base), and WORKDIR restates the folders that exist.
func TestLaterLayersKeepMadeFolders(t *testing.T) {
	f := syntheticFolders(t)
	ctx := context.Background()
	parent := func(p string) (*tar.Header, error) { return f.header(ctx, p) }
	if err := record(f.made, tarOf(t, dirHdr("srv/", 0o755, 0), dirHdr("srv/data/", 0o700, 7), fileHdr("srv/data/x"))); err != nil {
		t.Fatal(err)
	}
	wd, err := dirLayer("/srv/data/w", parent)
	if err != nil {
		t.Fatal(err)
	}
	got := layerHeaders(t, wd)
	if h := got["srv/data/"]; h == nil || h.Mode != 0o700 || h.Uid != 7 {
		t.Errorf("srv/data/: %+v, want 0700 owned by 7 (made by an earlier layer)", h)
	}
	if h := got["srv/data/w/"]; h == nil || h.Mode != 0o755 || h.Uid != 0 || !h.ModTime.Equal(epoch) {
		t.Errorf("srv/data/w/: %+v, want a new folder", h)
	}
	if len(got) != 3 {
		t.Errorf("WORKDIR layer entries %v, want srv/, srv/data/, srv/data/w/", slices.Sorted(maps.Keys(got)))
	}

	wd, err = dirLayer("/tmp", parent)
	if err != nil {
		t.Fatal(err)
	}
	if h := layerHeaders(t, wd)["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("WORKDIR /tmp: %+v, want /tmp restated at 1777", h)
	}
	if _, err := dirLayer("/bin/x", parent); !errors.Is(err, errNotSimple) {
		t.Errorf("WORKDIR /bin/x over a link: err = %v, want errNotSimple", err)
	}

	// FROM scratch: every folder is new, and nothing asks for a base.
	scratch := &folders{made: map[string]fsMeta{}}
	wd, err = dirLayer("/tmp", func(p string) (*tar.Header, error) { return scratch.header(ctx, p) })
	if err != nil {
		t.Fatal(err)
	}
	if h := layerHeaders(t, wd)["tmp/"]; h == nil || h.Mode != 0o755 {
		t.Errorf("WORKDIR /tmp on scratch: %+v, want 0755", h)
	}
}

// TestFolderCache: a base image is read once (in memory, then from the
// state folder by a new process), a failed read is not kept.
func TestFolderCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	reads := 0
	want := map[string]fsMeta{"tmp": {Type: tar.TypeDir, Mode: 0o1777, ModTime: baseTime}}
	load := func(context.Context) (map[string]fsMeta, error) {
		reads++
		return want, nil
	}
	var c folderCache
	for range 2 {
		got, err := c.get(ctx, "sha256:abc", dir, load)
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("get = %v, %v; want %v", got, err, want)
		}
	}
	if reads != 1 {
		t.Errorf("read %d times, want once", reads)
	}
	if _, err := os.Stat(filepath.Join(dir, "abc.json")); err != nil {
		t.Errorf("not kept on disk: %v", err)
	}
	var fresh folderCache // the next process
	got, err := fresh.get(ctx, "sha256:abc", dir, func(context.Context) (map[string]fsMeta, error) {
		return nil, errors.New("read again")
	})
	if err != nil || !got["tmp"].ModTime.Equal(baseTime) || got["tmp"].Mode != 0o1777 {
		t.Errorf("from disk: %v, %v; want %v", got, err, want)
	}

	fail := errors.New("engine gone")
	if _, err := c.get(ctx, "sha256:def", "", func(context.Context) (map[string]fsMeta, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Errorf("failed read: err = %v", err)
	}
	if got, err := c.get(ctx, "sha256:def", "", load); err != nil || !maps.Equal(got, want) {
		t.Errorf("after a failed read: %v, %v; want it read again", got, err)
	}
}
