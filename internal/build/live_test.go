package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/supervise"
)

// assembleDir assembles the FROM-scratch project in dir (no Docker needed).
func assembleDir(t *testing.T, dir string, live bool) *Assembled {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	res, err := Image(ctx, nil, spec, ImageOptions{Live: live})
	if err != nil {
		t.Fatal(err)
	}
	return res.Assembled
}

func TestLiveDiff(t *testing.T) {
	dir := t.TempDir()
	df := "FROM scratch\nCOPY app /app\nCOPY static/ /srv/static/\nENTRYPOINT [\"/app\"]\nCMD [\"-v\"]\n"
	writeFile(t, filepath.Join(dir, "Dockerfile"), df)
	writeFile(t, filepath.Join(dir, "app"), "binary v1")
	writeFile(t, filepath.Join(dir, "static/keep.txt"), "same")
	writeFile(t, filepath.Join(dir, "static/old.txt"), "goes away")
	writeFile(t, filepath.Join(dir, "static/gone/a.txt"), "its folder goes")
	v1 := assembleDir(t, dir, true)

	var cfg imageConfig
	if err := json.Unmarshal(v1.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{supervise.Path, "--", "/app"}; !slices.Equal(cfg.Config.Entrypoint, want) || !slices.Equal(cfg.Config.Cmd, []string{"-v"}) {
		t.Fatalf("entrypoint %q cmd %q, want %q and the image's CMD", cfg.Config.Entrypoint, cfg.Config.Cmd, want)
	}

	same, err := LiveDiff(v1, assembleDir(t, dir, true))
	if err != nil || !same.Empty() {
		t.Fatalf("the same files: changes %+v, err %v; want none", same, err)
	}

	writeFile(t, filepath.Join(dir, "app"), "binary v2")
	writeFile(t, filepath.Join(dir, "static/new/b.txt"), "new")
	for _, p := range []string{"static/old.txt", "static/gone"} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	v2 := assembleDir(t, dir, true)
	ch, err := LiveDiff(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/app", "/srv/static/new", "/srv/static/new/b.txt"}; !slices.Equal(ch.Files, want) {
		t.Errorf("files %q, want %q", ch.Files, want)
	}
	if want := []string{"/srv/static/gone", "/srv/static/old.txt"}; !slices.Equal(ch.Removed, want) {
		t.Errorf("removed %q, want %q", ch.Removed, want)
	}
	tr := tar.NewReader(bytes.NewReader(ch.Tar))
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root as in the image", h.Name, h.Uid, h.Gid)
		}
	}
	if got["app"] != "binary v2" || got["srv/static/new/b.txt"] != "new" || len(got) != 3 {
		t.Errorf("tar holds %q", got)
	}

	// Back again is the reverse.
	back, err := LiveDiff(v2, v1)
	if err != nil || !slices.Equal(back.Removed, []string{"/srv/static/new"}) || !slices.Contains(back.Files, "/srv/static/old.txt") {
		t.Errorf("reverse: %+v, %v", back, err)
	}

	// Other settings, or no supervisor: no live update.
	writeFile(t, filepath.Join(dir, "Dockerfile"), strings.Replace(df, "CMD [\"-v\"]", "CMD [\"-q\"]", 1))
	if _, err := LiveDiff(v2, assembleDir(t, dir, true)); err == nil || !strings.Contains(err.Error(), "settings") {
		t.Errorf("changed CMD: err %v, want one about the settings", err)
	}
	if _, err := LiveDiff(v2, assembleDir(t, dir, false)); err == nil || !strings.Contains(err.Error(), "supervisor") {
		t.Errorf("no supervisor: err %v", err)
	}
}

// TestLiveImageNeedsNoGo: assembling a live image takes the supervisor
// embedded in devenv; no go command (nor anything else) is run.
func TestLiveImageNeedsNoGo(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, filepath.Join(dir, "app"), "binary")
	t.Setenv("PATH", t.TempDir())
	a := assembleDir(t, dir, true)
	if !a.Live {
		t.Fatal("the image is not live")
	}
	var cfg imageConfig
	if err := json.Unmarshal(a.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != runtime.GOARCH {
		t.Fatalf("architecture %q, want the engine's (without one, the host's) %q", cfg.Architecture, runtime.GOARCH)
	}
	want, err := supervise.Binary(context.Background(), runtime.GOARCH)
	if err != nil {
		t.Skipf("no embedded supervisor for this host: %v", err)
	}
	for _, l := range a.Layers {
		tr := tar.NewReader(bytes.NewReader(l.Data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if "/"+h.Name == supervise.Path {
				got, _ := io.ReadAll(tr)
				if !bytes.Equal(got, want) || h.Mode != 0o755 {
					t.Fatalf("%s in the image: %d bytes, mode %o; want the embedded %d bytes, 0755", supervise.Path, len(got), h.Mode, len(want))
				}
				return
			}
		}
	}
	t.Fatalf("no %s in the image", supervise.Path)
}

func TestLiveLayer(t *testing.T) {
	for _, tc := range []struct {
		arch string
		want string // in the errNoLive error; "" = a layer
	}{
		{arch: "amd64"},
		{arch: "arm64"},
		{arch: "riscv64", want: "no live update: devenv carries its supervisor for linux/amd64 and linux/arm64, not for linux/riscv64 images"},
		{arch: "", want: "the image names no architecture"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			l, err := liveLayer(context.Background(), tc.arch)
			if tc.want == "" {
				if err != nil || len(l.Data) == 0 || !strings.HasPrefix(l.DiffID, "sha256:") {
					t.Fatalf("layer %q (%d bytes), err %v", l.DiffID, len(l.Data), err)
				}
				return
			}
			if !errors.Is(err, errNoLive) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want errNoLive saying %q", err, tc.want)
			}
		})
	}
}

// TestLiveDiffBaseFiles: a path that devenv's layers wrote and no longer
// write goes back to what the base image has there: a folder of the base
// is restated (its mode, owner and time), never removed; only what the
// base lacks is removed; a file of the base that a layer replaced cannot
// be written back (the diff holds no base content): the image must
// replace the container.
func TestLiveDiffBaseFiles(t *testing.T) {
	base, err := readBaseFolders(bytes.NewReader(legacyArchive(t, syntheticLayers(t))))
	if err != nil {
		t.Fatal(err)
	}
	// The entries of devenv's layers, folders as the base has them
	// (copyLayer restates them), files with content.
	type ent struct {
		hdr  *tar.Header
		data string
	}
	dir := func(name string) ent {
		m, ok := base[strings.TrimSuffix(name, "/")]
		if !ok {
			m = newFolder
		}
		return ent{hdr: folderHeader(strings.TrimSuffix(name, "/"), m)}
	}
	file := func(name, data string) ent {
		return ent{&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}, data}
	}
	for _, tc := range []struct {
		name        string
		from, to    []ent
		unknown     bool     // the base's files could not be read
		files, gone []string // want Files, Removed
		wantErr     string   // want no changes but this error
	}{{
		name:  "a removed COPY into a base folder",
		from:  []ent{file("app", "v1"), dir("tmp/"), file("tmp/x", "x")},
		to:    []ent{file("app", "v1")},
		files: []string{"/tmp"}, gone: []string{"/tmp/x"},
	}, {
		name:  "a COPY into a base folder added back",
		from:  []ent{file("app", "v1")},
		to:    []ent{file("app", "v1"), dir("tmp/"), file("tmp/x", "x")},
		files: []string{"/tmp", "/tmp/x"},
	}, {
		name: "a removed file in a base folder",
		from: []ent{dir("srv/"), dir("srv/data/"), file("srv/data/a", "a"), file("srv/data/b", "b")},
		to:   []ent{dir("srv/"), dir("srv/data/"), file("srv/data/a", "a")},
		gone: []string{"/srv/data/b"},
	}, {
		name:  "a removed folder the base lacks",
		from:  []ent{file("app", "v1"), dir("new/"), dir("new/deep/"), file("new/deep/app", "x")},
		to:    []ent{file("app", "v2")},
		files: []string{"/app"}, gone: []string{"/new"},
	}, {
		name:  "a removed folder the base lacks, in base folders",
		from:  []ent{dir("srv/"), dir("srv/data/"), dir("srv/data/sub/"), file("srv/data/sub/f", "f")},
		to:    nil,
		files: []string{"/srv", "/srv/data"}, gone: []string{"/srv/data/sub"},
	}, {
		name:  "a folder the base removed (whiteout) is removed",
		from:  []ent{dir("opt/"), dir("opt/old/"), file("opt/old/app", "x")},
		to:    nil,
		files: []string{"/opt"}, gone: []string{"/opt/old"},
	}, {
		name:    "a base file a layer replaced",
		from:    []ent{dir("usr/"), dir("usr/bin/"), file("usr/bin/sh", "mine")},
		to:      []ent{dir("usr/"), dir("usr/bin/")},
		wantErr: "/usr/bin/sh",
	}, {
		name:    "a base file a layer replaced, its folders no longer written",
		from:    []ent{dir("usr/"), dir("usr/bin/"), file("usr/bin/sh", "mine")},
		to:      nil,
		wantErr: "/usr/bin/sh",
	}, {
		name:    "the base's files unknown",
		from:    []ent{file("app", "v1"), dir("tmp/"), file("tmp/x", "x")},
		to:      []ent{file("app", "v1")},
		unknown: true,
		wantErr: "not known",
	}, {
		name:    "the base's files unknown, nothing removed",
		from:    []ent{file("app", "v1"), dir("tmp/"), file("tmp/x", "x")},
		to:      []ent{file("app", "v2"), dir("tmp/"), file("tmp/x", "x")},
		unknown: true,
		files:   []string{"/app"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			img := func(ents []ent) *Assembled {
				cfg, err := json.Marshal(imageConfig{Architecture: "amd64", OS: "linux"})
				if err != nil {
					t.Fatal(err)
				}
				a := &Assembled{Config: cfg, Live: true, Base: "sha256:base", baseFiles: base, Layers: []Layer{{DiffID: "sha256:baselayer"}}}
				if tc.unknown {
					a.baseFiles = nil
				}
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				for _, e := range ents {
					if err := tw.WriteHeader(e.hdr); err != nil {
						t.Fatal(err)
					}
					if _, err := tw.Write([]byte(e.data)); err != nil {
						t.Fatal(err)
					}
				}
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				a.Layers = append(a.Layers, dataLayer(buf.Bytes()))
				return a
			}
			ch, err := LiveDiff(img(tc.from), img(tc.to))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("changes %+v, err %v; want an error naming %s (the image replaces the container)", ch, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ch.Files, tc.files) || !slices.Equal(ch.Removed, tc.gone) {
				t.Errorf("files %q, removed %q; want %q, %q", ch.Files, ch.Removed, tc.files, tc.gone)
			}
			for _, r := range ch.Removed {
				if slices.Contains(ch.Files, r) {
					t.Errorf("%s both removed and written", r)
				}
				if _, ok := base[strings.TrimPrefix(r, "/")]; ok {
					t.Errorf("%s removed, but the base image has it", r)
				}
			}
			// Every folder written is as the base has it.
			tr := tar.NewReader(bytes.NewReader(ch.Tar))
			n := 0
			for ; ; n++ {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				m, ok := base[strings.Trim(h.Name, "/")]
				if h.Typeflag != tar.TypeDir || !ok {
					continue
				}
				if got := metaOf(h); got != m {
					t.Errorf("%s written as %+v, want the base's %+v", h.Name, got, m)
				}
			}
			if n != len(ch.Files) {
				t.Errorf("the tar holds %d entries, Files names %d", n, len(ch.Files))
			}
		})
	}
}

// TestLiveDiffNarrowMatchesFull: looking only at the paths of the layers
// that differ gives the changes that indexing every path gives, for
// edits, additions and removals in a COPY cut into several layers; and a
// one-file edit looks at one layer's paths, not all.
func TestLiveDiffNarrowMatchesFull(t *testing.T) {
	dir := t.TempDir()
	at := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	writeFile(t, at("Dockerfile"), "FROM scratch\nCOPY app /app\nCOPY data/ /srv/data/\nENTRYPOINT [\"/app\"]\n")
	writeFile(t, at("app"), "binary v1")
	const files = 300
	for i := range files {
		writeFile(t, at(fmt.Sprintf("data/d%02d/f%03d.txt", i%10, i)), fmt.Sprint(i))
	}
	st, err := LoadState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st.chunkMin = 32
	build := func() *Assembled {
		t.Helper()
		res, err := Image(context.Background(), nil, Spec{Service: "svc", Project: "p", Context: dir}, ImageOptions{Live: true, State: st})
		if err != nil {
			t.Fatal(err)
		}
		return res.Assembled
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	prev := build()
	if len(prev.Layers) < 6 {
		t.Fatalf("%d layers, want the COPY cut into several", len(prev.Layers))
	}
	steps := []struct {
		name   string
		change func()
	}{
		{"one file edited", func() { writeFile(t, at("data/d07/f007.txt"), "seven") }},
		{"the app", func() { writeFile(t, at("app"), "binary v2") }},
		{"a file added", func() { writeFile(t, at("data/d03/new.txt"), "new") }},
		{"a file removed", func() { must(os.Remove(at("data/d05/f005.txt"))) }},
		{"a folder removed", func() { must(os.RemoveAll(at("data/d09"))) }},
		{"a folder added", func() { writeFile(t, at("data/zz/a.txt"), "a") }},
		{"nothing", func() {}},
	}
	for _, s := range steps {
		s.change()
		next := build()
		narrow, err := liveDiff(prev, next, true)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		full, err := liveDiff(prev, next, false)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !slices.Equal(narrow.Files, full.Files) || !slices.Equal(narrow.Removed, full.Removed) || !bytes.Equal(narrow.Tar, full.Tar) {
			t.Errorf("%s: narrow %q removed %q, full %q removed %q (tars equal: %v)", s.name, narrow.Files, narrow.Removed, full.Files, full.Removed, bytes.Equal(narrow.Tar, full.Tar))
		}
		if s.name == "one file edited" {
			if !slices.Equal(narrow.Files, []string{"/srv/data/d07/f007.txt"}) {
				t.Errorf("one file edited: files %q", narrow.Files)
			}
			_, cur, ok, err := changedFileMaps(prev, next)
			if err != nil || !ok || len(cur) == 0 || len(cur) > files/3 {
				t.Errorf("one file edited: %d paths looked at (ok %v, %v), want one layer's", len(cur), ok, err)
			}
		}
		prev = next
	}
}
