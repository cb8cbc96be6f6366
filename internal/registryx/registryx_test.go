package registryx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/registry"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// layerTar is an uncompressed layer holding one file.
func layerTar(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func configOf(t *testing.T, layers ...[]byte) []byte {
	t.Helper()
	var ids []string
	for _, l := range layers {
		ids = append(ids, digest(l))
	}
	b, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": ids}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type entry struct {
	name, link string
	data       []byte
}

func archive(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Linkname: e.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// legacyArchive is what `docker save` wrote before Docker 25.
func legacyArchive(t *testing.T, layers ...[]byte) []byte {
	t.Helper()
	cfg := configOf(t, layers...)
	cfgName := strings.TrimPrefix(digest(cfg), "sha256:") + ".json"
	es := []entry{{name: cfgName, data: cfg}}
	var paths []string
	for i, l := range layers {
		dir := strings.Repeat(string(rune('a'+i)), 64)
		es = append(es, entry{name: dir + "/VERSION", data: []byte("1.0")}, entry{name: dir + "/json", data: []byte(`{"id":"x"}`)}, entry{name: dir + "/layer.tar", data: l})
		paths = append(paths, dir+"/layer.tar")
	}
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"base:1"}, "Layers": paths}})
	return archive(t, append(es, entry{name: "manifest.json", data: m}))
}

// ociArchive is what `docker save` writes since Docker 25: an OCI layout
// (here with gzip-compressed layers, as the containerd image store keeps
// pulled ones) plus a manifest.json, and a legacy path linked to a blob.
func ociArchive(t *testing.T, layers ...[]byte) []byte {
	t.Helper()
	cfg := configOf(t, layers...)
	blob := func(b []byte) string { return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:") }
	es := []entry{{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {name: blob(cfg), data: cfg}}
	var paths []string
	for i, l := range layers {
		z := l
		if i%2 == 0 {
			z = gz(t, l)
		}
		es = append(es, entry{name: blob(z), data: z})
		paths = append(paths, blob(z))
	}
	es = append(es, entry{name: "legacy/layer.tar", link: "../" + paths[0]})
	paths[0] = "legacy/layer.tar"
	m, _ := json.Marshal([]map[string]any{{"Config": blob(cfg), "RepoTags": []string{"base:1"}, "Layers": paths}})
	idx := []byte(`{"schemaVersion":2,"manifests":[]}`)
	return archive(t, append(es, entry{name: "index.json", data: idx}, entry{name: "manifest.json", data: m}))
}

func TestUnpackArchive(t *testing.T) {
	l1, l2, l3 := layerTar(t, "etc/a", "a"), layerTar(t, "etc/b", strings.Repeat("b", 5000)), layerTar(t, "etc/c", "c")
	for name, arch := range map[string][]byte{"legacy": legacyArchive(t, l1, l2, l3), "oci": ociArchive(t, l1, l2, l3)} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			u, err := unpackArchive(bytes.NewReader(arch), dir)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(u.config, configOf(t, l1, l2, l3)) {
				t.Errorf("config = %s", u.config)
			}
			for i, l := range [][]byte{l1, l2, l3} {
				d := digest(l)
				if u.diffIDs[i] != d || u.sizes[d] != int64(len(l)) {
					t.Errorf("layer %d: %s size %d", i, u.diffIDs[i], u.sizes[d])
				}
				rc, err := u.open(d)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, l) {
					t.Errorf("layer %d differs", i)
				}
			}
		})
	}
}

func TestUnpackArchiveRefusesBrokenOnes(t *testing.T) {
	l1 := layerTar(t, "a", "a")
	cfg := configOf(t, l1)
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"no manifest", []entry{{name: "c.json", data: cfg}}, "no manifest.json"},
		{"two images", []entry{{name: "manifest.json", data: []byte(`[{},{}]`)}}, "2 images"},
		{"no config", []entry{{name: "manifest.json", data: []byte(`[{"Config":"x.json","Layers":[]}]`)}}, "no config x.json"},
		{"wrong layer", []entry{{name: "c.json", data: cfg}, {name: "l/layer.tar", data: layerTar(t, "b", "b")},
			{name: "manifest.json", data: []byte(`[{"Config":"c.json","Layers":["l/layer.tar"]}]`)}}, "the config says " + digest(l1)},
		{"zstd", []entry{{name: "blobs/sha256/x", data: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 2000)...)}}, "zstd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := unpackArchive(bytes.NewReader(archive(t, tc.entries)), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// testRegistry is go-containerregistry's in-process registry on loopback.
func testRegistry(t *testing.T) string {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// assembledOn is an image devenv assembled on base layers (given without
// data) with own layers, the first in memory, the others stored in files.
func assembledOn(t *testing.T, baseID string, base [][]byte, own ...[]byte) *build.Assembled {
	t.Helper()
	a := &build.Assembled{Base: baseID, Config: configOf(t, append(append([][]byte{}, base...), own...)...)}
	for _, l := range base {
		a.Layers = append(a.Layers, build.Layer{DiffID: digest(l)})
	}
	dir := t.TempDir()
	for i, l := range own {
		bl := build.Layer{DiffID: digest(l), Size: int64(len(l))}
		if i == 0 {
			bl.Data = l
		} else {
			bl.Path = filepath.Join(dir, strings.TrimPrefix(bl.DiffID, "sha256:")+".tar")
			if err := os.WriteFile(bl.Path, l, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		a.Layers = append(a.Layers, bl)
	}
	return a
}

func TestAssembledReadsTheBaseOnlyWhenNeeded(t *testing.T) {
	host, other := testRegistry(t), testRegistry(t)
	ctx := context.Background()
	b1, b2 := layerTar(t, "etc/base1", "1"), layerTar(t, "etc/base2", strings.Repeat("2", 3000))
	saves := 0
	state := t.TempDir()
	src := &Source{Dir: state, save: func(_ context.Context, ref string) (io.ReadCloser, error) {
		if ref != "sha256:base" {
			t.Errorf("saved %s", ref)
		}
		saves++
		return io.NopCloser(bytes.NewReader(ociArchive(t, b1, b2))), nil
	}}
	opts := registry.PushOptions{Insecure: true}
	steps := []struct {
		name              string
		a                 *build.Assembled
		ref               string
		saves             int
		uploaded, skipped int
	}{
		// Sizes unknown: one save; everything uploaded (2 base + 2 own + config).
		{"first", assembledOn(t, "sha256:base", [][]byte{b1, b2}, layerTar(t, "app/x", "1"), layerTar(t, "app/y", "1")), host + "/p/svc:1", 1, 5, 0},
		// One own layer changed: sizes known, the registry has the base: no save.
		{"one change", assembledOn(t, "sha256:base", [][]byte{b1, b2}, layerTar(t, "app/x", "2"), layerTar(t, "app/y", "1")), host + "/p/svc:2", 0, 2, 3},
		// Another registry lacks the base: one save, the base uploaded.
		{"new registry", assembledOn(t, "sha256:base", [][]byte{b1, b2}, layerTar(t, "app/x", "2"), layerTar(t, "app/y", "1")), other + "/p/svc:2", 1, 5, 0},
	}
	for _, s := range steps {
		saves = 0
		img, done, err := src.Assembled(ctx, s.a)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		res, err := registry.Push(ctx, img, s.ref, opts)
		done()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if saves != s.saves || res.Uploaded != s.uploaded || res.Skipped != s.skipped {
			t.Errorf("%s: %d saves, %d uploaded, %d skipped; want %d, %d, %d", s.name, saves, res.Uploaded, res.Skipped, s.saves, s.uploaded, s.skipped)
		}
	}
	// Only sizes.json stays behind.
	entries, err := os.ReadDir(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != sizesFile {
		t.Errorf("state folder holds %v", entries)
	}
}

func TestAssembledFromScratchNeedsNoEngine(t *testing.T) {
	host := testRegistry(t)
	src := &Source{Dir: t.TempDir()}
	a := assembledOn(t, "", nil, layerTar(t, "app", "x"))
	img, done, err := src.Assembled(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	res, err := registry.Push(context.Background(), img, host+"/p/scratch:1", registry.PushOptions{Insecure: true})
	if err != nil || res.Uploaded != 2 {
		t.Fatalf("res %+v, err %v", res, err)
	}
}

func TestEngine(t *testing.T) {
	host := testRegistry(t)
	l1, l2 := layerTar(t, "a", "a"), layerTar(t, "b", "b")
	state := t.TempDir()
	src := &Source{Dir: state, save: func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(legacyArchive(t, l1, l2))), nil
	}}
	img, done, err := src.Engine(context.Background(), "built:1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := registry.Push(context.Background(), img, host+"/p/built:1", registry.PushOptions{Insecure: true})
	done()
	if err != nil || res.Uploaded != 3 {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 1 {
		t.Errorf("state folder holds %v", entries)
	}
}
