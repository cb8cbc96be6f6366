package imagearchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const (
	manifestType = "application/vnd.oci.image.manifest.v1+json"
	indexType    = "application/vnd.oci.image.index.v1+json"
)

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layerTar is a layer: a tar holding one file.
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

func gzipped(t *testing.T, b []byte) []byte {
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

// entry is one entry of a test archive: a regular file, or a symbolic
// link when link is set.
type entry struct {
	name, link string
	data       []byte
}

func archiveOf(t *testing.T, entries ...entry) []byte {
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

// testImage is an image of a test archive: its name, its uncompressed
// layers, and its config (listing them).
type testImage struct {
	name   string
	layers [][]byte
	config []byte
}

func imageOf(t *testing.T, name string, layers ...[]byte) testImage {
	t.Helper()
	var ids []string
	for _, l := range layers {
		ids = append(ids, digestOf(l))
	}
	config := mustJSON(t, map[string]any{"architecture": runtime.GOARCH, "os": "linux", "config": map[string]any{"Labels": map[string]string{"name": name}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": ids}})
	return testImage{name: name, layers: layers, config: config}
}

// legacyArchive is what Docker 20.10's `docker save` writes: a folder per
// layer (VERSION, json, layer.tar), a layer already written a symbolic
// link to its first copy, a <hex>.json config, manifest.json last.
func legacyArchive(t *testing.T, imgs ...testImage) []byte {
	t.Helper()
	var es []entry
	written := map[string]string{} // layer digest -> its layer.tar
	var manifest []map[string]any
	for _, img := range imgs {
		var paths []string
		for _, l := range img.layers {
			dir := strings.TrimPrefix(digestOf(append([]byte(img.name), l...)), "sha256:")
			p := dir + "/layer.tar"
			if first, ok := written[digestOf(l)]; ok {
				es = append(es, entry{name: p, link: "../" + first})
			} else {
				es = append(es, entry{name: dir + "/VERSION", data: []byte("1.0")}, entry{name: dir + "/json", data: []byte(`{"id":"` + dir + `"}`)},
					entry{name: p, data: l})
				written[digestOf(l)] = p
			}
			paths = append(paths, p)
		}
		cfg := strings.TrimPrefix(digestOf(img.config), "sha256:") + ".json"
		es = append(es, entry{name: cfg, data: img.config})
		manifest = append(manifest, map[string]any{"Config": cfg, "RepoTags": []string{img.name}, "Layers": paths})
	}
	es = append(es, entry{name: "manifest.json", data: mustJSON(t, manifest)}, entry{name: "repositories", data: []byte(`{}`)})
	return archiveOf(t, es...)
}

// ociOptions say how ociArchive writes an OCI layout.
type ociOptions struct {
	gzip         bool // layers gzip-compressed (as the containerd image store keeps pulled ones)
	manifestJSON bool // a manifest.json as well (Docker 25 and later)
	nested       bool // index.json leads to a nested index per image, with another platform's manifest (not saved) and an attestation
}

func blob(es *[]entry, seen map[string]bool, b []byte) map[string]any {
	d := digestOf(b)
	if !seen[d] {
		seen[d] = true
		*es = append(*es, entry{name: BlobPath(d), data: b})
	}
	return map[string]any{"digest": d, "size": len(b)}
}

// ociArchive is an OCI image layout of imgs, as Docker 25 and later or the
// containerd image store save it.
func ociArchive(t *testing.T, o ociOptions, imgs ...testImage) []byte {
	t.Helper()
	var es []entry
	seen := map[string]bool{}
	var index, legacy []map[string]any
	for _, img := range imgs {
		var layers []map[string]any
		var paths []string
		for _, l := range img.layers {
			mt := "application/vnd.oci.image.layer.v1.tar"
			if o.gzip {
				l, mt = gzipped(t, l), mt+"+gzip"
			}
			d := blob(&es, seen, l)
			d["mediaType"] = mt
			layers = append(layers, d)
			paths = append(paths, BlobPath(digestOf(l)))
		}
		cd := blob(&es, seen, img.config)
		cd["mediaType"] = "application/vnd.oci.image.config.v1+json"
		md := blob(&es, seen, mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": manifestType, "config": cd, "layers": layers}))
		md["mediaType"] = manifestType
		md["platform"] = map[string]string{"os": "linux", "architecture": runtime.GOARCH}
		top := md
		if o.nested {
			other := map[string]any{"mediaType": manifestType, "digest": digestOf([]byte("not saved " + img.name)), "size": 10,
				"platform": map[string]string{"os": "linux", "architecture": "s390x"}}
			statement := blob(&es, seen, []byte(`{"_type":"https://in-toto.io/Statement/v0.1","name":"`+img.name+`"}`))
			statement["mediaType"] = "application/vnd.in-toto+json"
			ad := blob(&es, seen, mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": manifestType,
				"config": map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digestOf([]byte("{}")), "size": 2}, "layers": []any{statement}}))
			ad["mediaType"] = manifestType
			ad["platform"] = map[string]string{"os": "unknown", "architecture": "unknown"}
			top = blob(&es, seen, mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": indexType, "manifests": []any{md, other, ad}}))
			top["mediaType"] = indexType
		}
		top["annotations"] = map[string]string{"io.containerd.image.name": img.name}
		index = append(index, top)
		legacy = append(legacy, map[string]any{"Config": BlobPath(digestOf(img.config)), "RepoTags": []string{img.name}, "Layers": paths})
	}
	es = append(es, entry{name: "index.json", data: mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": indexType, "manifests": index})})
	if o.manifestJSON {
		es = append(es, entry{name: "manifest.json", data: mustJSON(t, legacy)})
	}
	return archiveOf(t, append(es, entry{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)})...)
}

// readAll reads archive b, keeping every entry's content as Tar gives it
// and its compression, by name.
func readAll(t *testing.T, b []byte) (*Archive, map[string][]byte, error) {
	t.Helper()
	content := map[string][]byte{}
	a, err := Read(bytes.NewReader(b), func(e *Entry) error {
		rc, err := e.Tar()
		if err != nil {
			return err
		}
		defer rc.Close()
		c, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		content[e.Name] = c
		return nil
	})
	return a, content, err
}

func TestImages(t *testing.T) {
	base := layerTar(t, "etc/base.conf", "the base layer")
	empty := layerTar(t, "marker", "")
	app := layerTar(t, "app/run.sh", "#!/bin/sh\necho app\n")
	other := layerTar(t, "app/other", strings.Repeat("other", 1000))
	// A layer whose first file's name starts with a brace is a layer, not
	// JSON.
	brace := layerTar(t, "{braces}", "{}")
	one := imageOf(t, "devenv.local/app:1", base, empty, app, empty)
	two := []testImage{imageOf(t, "devenv.local/app:1", base, app), imageOf(t, "devenv.local/other:1", base, other, brace)}

	for _, tc := range []struct {
		name       string
		archive    []byte
		want       []testImage
		compressed Compression
	}{
		{"legacy, a layer repeated", legacyArchive(t, one), []testImage{one}, Uncompressed},
		{"legacy, two images sharing a layer", legacyArchive(t, two...), two, Uncompressed},
		{"Docker 25 OCI layout with manifest.json", ociArchive(t, ociOptions{manifestJSON: true}, one), []testImage{one}, Uncompressed},
		{"Docker 25 OCI layout, two images sharing a layer", ociArchive(t, ociOptions{manifestJSON: true}, two...), two, Uncompressed},
		{"OCI layout, gzip layers, index.json only", ociArchive(t, ociOptions{gzip: true}, two...), two, Gzip},
		{"OCI layout, gzip layers, manifest.json", ociArchive(t, ociOptions{gzip: true, manifestJSON: true}, two...), two, Gzip},
		{"OCI layout, nested indexes", ociArchive(t, ociOptions{gzip: true, nested: true}, two...), two, Gzip},
		{"OCI layout, nested index, one image", ociArchive(t, ociOptions{nested: true}, one), []testImage{one}, Uncompressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, content, err := readAll(t, tc.archive)
			if err != nil {
				t.Fatal(err)
			}
			imgs, err := a.Images()
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != len(tc.want) {
				t.Fatalf("%d images, want %d", len(imgs), len(tc.want))
			}
			paths := map[string]string{} // layer digest -> the entry holding it
			for i, img := range imgs {
				want := tc.want[i]
				if !slices.Equal(img.Names, []string{want.name}) {
					t.Errorf("image %d: names %q, want %q", i, img.Names, want.name)
				}
				if !bytes.Equal(img.Config, want.config) {
					t.Errorf("image %d: config %s, want %s", i, img.Config, want.config)
				}
				if len(img.Layers) != len(want.layers) {
					t.Fatalf("image %d: %d layers, want %d", i, len(img.Layers), len(want.layers))
				}
				for j, l := range img.Layers {
					d := digestOf(want.layers[j])
					if l.DiffID != d {
						t.Errorf("image %d layer %d: diffID %s, want %s", i, j, l.DiffID, d)
					}
					if !bytes.Equal(content[l.Path], want.layers[j]) {
						t.Errorf("image %d layer %d: %s holds %d bytes, want the layer's %d", i, j, l.Path, len(content[l.Path]), len(want.layers[j]))
					}
					f, ok := a.File(l.Path)
					if !ok || f.Compression != tc.compressed {
						t.Errorf("image %d layer %d: %+v, want a file, %s", i, j, f, tc.compressed)
					}
					if p, ok := paths[d]; ok && p != l.Path {
						t.Errorf("image %d layer %d: in %s, and in %s before: a shared layer is one entry", i, j, l.Path, p)
					}
					paths[d] = l.Path
				}
			}
		})
	}
}

func TestOne(t *testing.T) {
	base, app := layerTar(t, "base", "b"), layerTar(t, "app", "a")
	img := imageOf(t, "x:1", base, app)
	imgB := imageOf(t, "y:1", app)
	native := ociArchive(t, ociOptions{}, img)
	// Two platforms of one name: the index names each.
	var twoPlatforms, neitherNative []byte
	{
		var es []entry
		seen := map[string]bool{}
		var manifests []any
		for _, arch := range []string{runtime.GOARCH, "s390x"} {
			i := imageOf(t, "x:1", base, layerTar(t, "arch", arch))
			var layers []any
			for _, l := range i.layers {
				layers = append(layers, blob(&es, seen, l))
			}
			m := blob(&es, seen, mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": manifestType, "config": blob(&es, seen, i.config), "layers": layers}))
			m["mediaType"] = manifestType
			m["platform"] = map[string]string{"os": "linux", "architecture": arch}
			manifests = append(manifests, m)
		}
		twoPlatforms = archiveOf(t, append(es, entry{name: "index.json", data: mustJSON(t, map[string]any{"manifests": manifests})})...)
		for _, m := range manifests {
			m.(map[string]any)["platform"] = map[string]string{"os": "linux", "architecture": "riscv64"}
		}
		neitherNative = archiveOf(t, append(es, entry{name: "index.json", data: mustJSON(t, map[string]any{"manifests": manifests})})...)
	}
	for _, tc := range []struct {
		name    string
		archive []byte
		want    string // the one image's arch, or in the error
		ok      bool
	}{
		{"legacy, one image", legacyArchive(t, img), "", true},
		{"OCI, one image", native, runtime.GOARCH, true},
		{"OCI, the native of two platforms", twoPlatforms, runtime.GOARCH, true},
		{"legacy, two images", legacyArchive(t, img, imgB), "manifest.json lists 2 images, not one", false},
		{"OCI, two images", ociArchive(t, ociOptions{}, img, imgB), "index.json leads to 2 image manifests", false},
		{"OCI, two platforms, neither native", neitherNative, "index.json leads to 2 image manifests", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, err := readAll(t, tc.archive)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.One()
			switch {
			case tc.ok && err != nil:
				t.Fatal(err)
			case tc.ok && (got.Architecture != tc.want || len(got.Layers) != 2):
				t.Errorf("image %+v, want the %q one with 2 layers", got, tc.want)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRefuses(t *testing.T) {
	base := layerTar(t, "base", "b")
	img := imageOf(t, "x:1", base)
	gone := layerTar(t, "gone", "not in the archive")
	// An OCI layout whose manifest names a layer blob the archive lacks.
	missingBlob := func() []byte {
		var es []entry
		seen := map[string]bool{}
		m := blob(&es, seen, mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": manifestType,
			"config": blob(&es, seen, imageOf(t, "x:1", gone).config), "layers": []any{map[string]any{"digest": digestOf(gone), "size": len(gone)}}}))
		m["mediaType"] = manifestType
		return archiveOf(t, append(es, entry{name: "index.json", data: mustJSON(t, map[string]any{"manifests": []any{m}})})...)
	}()
	// Indexes nested deeper than any save writes.
	tooDeep := func() []byte {
		var es []entry
		seen := map[string]bool{}
		d := map[string]any{"digest": digestOf([]byte("a manifest")), "mediaType": manifestType}
		for range maxIndexDepth + 2 {
			d = blob(&es, seen, mustJSON(t, map[string]any{"manifests": []any{d}}))
			d["mediaType"] = indexType
		}
		return archiveOf(t, append(es, entry{name: "index.json", data: mustJSON(t, map[string]any{"manifests": []any{d}})})...)
	}()
	for _, tc := range []struct {
		name    string
		archive []byte
		read    bool   // Read fails (else One)
		want    string // in the error
	}{
		{"not a tar", bytes.Repeat([]byte("garbage!"), 200), true, "reading the archive"},
		{"a blob not matching its name", archiveOf(t, entry{name: BlobPath(digestOf([]byte("a"))), data: []byte("b")}), true,
			"blob " + BlobPath(digestOf([]byte("a"))) + " holds content of digest " + digestOf([]byte("b"))},
		{"a JSON blob not matching its name", archiveOf(t, entry{name: BlobPath(digestOf([]byte("{}"))), data: []byte("{ }")}), true, "holds content of digest"},
		{"no image", archiveOf(t, entry{name: "README", data: []byte("hello")}), false, "neither manifest.json nor index.json"},
		{"manifest.json not JSON", archiveOf(t, entry{name: "manifest.json", data: []byte("{")}), false, "reading manifest.json"},
		{"manifest.json not even looking like JSON", archiveOf(t, entry{name: "manifest.json", data: []byte("x")}), false, "manifest.json is not JSON"},
		{"legacy, a missing layer", archiveOf(t, entry{name: "c.json", data: img.config},
			entry{name: "manifest.json", data: []byte(`[{"Config":"c.json","Layers":["gone/layer.tar"]}]`)}), false, "the archive has no layer gone/layer.tar"},
		{"legacy, a link to a missing layer", archiveOf(t, entry{name: "c.json", data: img.config}, entry{name: "a/layer.tar", link: "../gone/layer.tar"},
			entry{name: "manifest.json", data: []byte(`[{"Config":"c.json","Layers":["a/layer.tar"]}]`)}), false, "the archive has no layer a/layer.tar"},
		{"OCI, a missing blob", missingBlob, false, "the archive has no layer " + BlobPath(digestOf(gone))},
		{"the config listing other layers", archiveOf(t, entry{name: "c.json", data: imageOf(t, "x", base, base).config}, entry{name: "l.tar", data: base},
			entry{name: "manifest.json", data: []byte(`[{"Config":"c.json","Layers":["l.tar"]}]`)}), false, "the config lists 2 layers, the manifest 1"},
		{"a config not JSON", archiveOf(t, entry{name: "c.json", data: []byte("{")}, entry{name: "manifest.json", data: []byte(`[{"Config":"c.json"}]`)}), false, "reading config c.json"},
		{"index.json naming a manifest not saved", archiveOf(t, entry{name: "index.json", data: mustJSON(t, map[string]any{"manifests": []any{
			map[string]any{"mediaType": manifestType, "digest": digestOf([]byte("m"))}}})}), false, "no image manifest"},
		{"indexes nested too deep", tooDeep, false, "nested too deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, err := readAll(t, tc.archive)
			if !tc.read {
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				_, err = a.One()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReadPartly: what the caller's function leaves unread is read past,
// and counts in the digest.
func TestReadPartly(t *testing.T) {
	l := layerTar(t, "big", strings.Repeat("x", 100_000))
	z := gzipped(t, l)
	archive := archiveOf(t, entry{name: "plain/layer.tar", data: l}, entry{name: BlobPath(digestOf(z)), data: z})
	for _, read := range []int{0, 10, 600} {
		a, err := Read(bytes.NewReader(archive), func(e *Entry) error {
			rc, err := e.Tar()
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.CopyN(io.Discard, rc, int64(read))
			return err
		})
		if err != nil {
			t.Fatalf("reading %d bytes of each: %v", read, err)
		}
		for name, want := range map[string][]byte{"plain/layer.tar": l, BlobPath(digestOf(z)): z} {
			if f, ok := a.File(name); !ok || f.Digest != digestOf(want) || f.Size != int64(len(want)) {
				t.Errorf("reading %d bytes: %s: %+v, want digest %s", read, name, f, digestOf(want))
			}
		}
	}
}

func TestCompression(t *testing.T) {
	l := layerTar(t, "a", "a")
	zstd := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 2000)...)
	for _, tc := range []struct {
		name string
		data []byte
		want Compression
		err  error
	}{
		{"uncompressed", l, Uncompressed, nil},
		{"gzip", gzipped(t, l), Gzip, nil},
		{"zstd", zstd, Zstd, ErrZstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sniff(tc.data); got != tc.want {
				t.Errorf("Sniff = %s, want %s", got, tc.want)
			}
			rc, err := Decompress(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Decompress: err = %v, want %v", err, tc.err)
			}
			if err == nil {
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, l) {
					t.Errorf("Decompress gives %d bytes, want the layer's %d", len(got), len(l))
				}
			}
			var tarErr error
			if _, err := Read(bytes.NewReader(archiveOf(t, entry{name: "l", data: tc.data})), func(e *Entry) error {
				_, tarErr = e.Tar()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(tarErr, tc.err) || (tarErr != nil && !strings.Contains(tarErr.Error(), "l: ")) {
				t.Errorf("Entry.Tar: err = %v, want %v naming the entry", tarErr, tc.err)
			}
		})
	}
}
