package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

const (
	ociManifestType = "application/vnd.oci.image.manifest.v1+json"
	ociIndexType    = "application/vnd.oci.image.index.v1+json"
)

// fixtureImage is a tiny image: a config and uncompressed layer tars.
type fixtureImage struct {
	config []byte
	layers [][]byte
}

func newTestImage(t *testing.T) fixtureImage {
	t.Helper()
	base := layerTar(t, "etc/base.conf", "the base layer")
	app := layerTar(t, "app/run.sh", "#!/bin/sh\necho app\n")
	return imageOf(t, base, app)
}

func imageOf(t *testing.T, layers ...[]byte) fixtureImage {
	t.Helper()
	var ids []string
	for _, l := range layers {
		ids = append(ids, digestOf(l))
	}
	config := mustJSON(t, map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Cmd": []string{"/app/run.sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": ids},
	})
	return fixtureImage{config: config, layers: layers}
}

// layerTar is a layer: a tar holding one file.
func layerTar(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
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

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipBytes(t *testing.T, b []byte) []byte {
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

func blobName(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// entry is one tar entry of a test archive.
type entry struct {
	name     string
	data     []byte
	typeflag byte   // tar.TypeReg when 0
	link     string // for links
}

func reg(name string, data []byte) entry { return entry{name: name, data: data} }

func archiveOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typeflag, Linkname: e.link}
		switch e.typeflag {
		case 0:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		case tar.TypeDir:
			h.Mode = 0o755
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

func descriptor(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digestOf(b), "size": len(b)}
}

// engine25Archive builds what `docker save` writes since Docker 25 (the
// graph driver store): an OCI layout with uncompressed layers, plus a
// manifest.json naming blobs.
func engine25Archive(t *testing.T, img fixtureImage) []byte {
	t.Helper()
	es := []entry{{name: "blobs/", typeflag: tar.TypeDir}, {name: "blobs/sha256/", typeflag: tar.TypeDir}}
	var paths []string
	var layers []map[string]any
	for _, l := range img.layers {
		es = append(es, reg(blobName(digestOf(l)), l))
		paths = append(paths, blobName(digestOf(l)))
		layers = append(layers, descriptor("application/vnd.oci.image.layer.v1.tar", l))
	}
	es = append(es, reg(blobName(digestOf(img.config)), img.config))
	m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifestType,
		"config": descriptor("application/vnd.oci.image.config.v1+json", img.config), "layers": layers})
	es = append(es, reg(blobName(digestOf(m)), m))
	md := descriptor(ociManifestType, m)
	md["annotations"] = map[string]string{"io.containerd.image.name": "docker.io/devenv.local/x:1", "org.opencontainers.image.ref.name": "1"}
	return archiveOf(t, append(es,
		reg("index.json", mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociIndexType, "manifests": []any{md}})),
		reg("manifest.json", mustJSON(t, []map[string]any{{"Config": blobName(digestOf(img.config)), "RepoTags": []string{"devenv.local/x:1"}, "Layers": paths}})),
		reg("oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`)),
		reg("repositories", []byte(`{"devenv.local/x":{"1":"abc"}}`)),
	)...)
}

// ociGzipArchive builds an OCI layout with gzip layers and only index.json,
// leading through a nested index to the image, an attestation, and a
// manifest of another platform that the archive does not hold.
func ociGzipArchive(t *testing.T, img fixtureImage) []byte {
	t.Helper()
	var es []entry
	var layers []map[string]any
	for _, l := range img.layers {
		z := gzipBytes(t, l)
		es = append(es, reg(blobName(digestOf(z)), z))
		layers = append(layers, descriptor("application/vnd.oci.image.layer.v1.tar+gzip", z))
	}
	es = append(es, reg(blobName(digestOf(img.config)), img.config))
	m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifestType,
		"config": descriptor("application/vnd.oci.image.config.v1+json", img.config), "layers": layers})
	es = append(es, reg(blobName(digestOf(m)), m))
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`)
	attestation := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifestType,
		"config": descriptor("application/vnd.oci.image.config.v1+json", []byte("{}")),
		"layers": []any{descriptor("application/vnd.in-toto+json", statement)}})
	es = append(es, reg(blobName(digestOf(statement)), statement), reg(blobName(digestOf(attestation)), attestation))
	md := descriptor(ociManifestType, m)
	md["platform"] = map[string]string{"os": "linux", "architecture": runtime.GOARCH}
	other := descriptor(ociManifestType, []byte("a manifest not saved"))
	other["platform"] = map[string]string{"os": "linux", "architecture": "s390x"}
	ad := descriptor(ociManifestType, attestation)
	ad["platform"] = map[string]string{"os": "unknown", "architecture": "unknown"}
	nested := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociIndexType, "manifests": []any{md, other, ad}})
	es = append(es, reg(blobName(digestOf(nested)), nested))
	nd := descriptor(ociIndexType, nested)
	nd["annotations"] = map[string]string{"io.containerd.image.name": "docker.io/devenv.local/x:1"}
	return archiveOf(t, append(es,
		reg("index.json", mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociIndexType, "manifests": []any{nd}})),
		reg("oci-layout", []byte(`{"imageLayoutVersion": "1.0.0"}`)),
	)...)
}

// content is what a read layer holds: its file or its data.
func content(t *testing.T, l savedLayer) []byte {
	t.Helper()
	if l.data != nil {
		return l.data
	}
	if l.file == "" {
		return nil
	}
	b, err := os.ReadFile(l.file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ociOf(t *testing.T, s *savedImage) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := s.writeOCI(&out, "devenv.local/x:1"); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReadSavedFormats(t *testing.T) {
	img := newTestImage(t)
	base, app := img.layers[0], img.layers[1]
	ids := []string{digestOf(base), digestOf(app)}
	formats := []struct {
		name    string
		archive []byte
	}{
		{"legacy docker-archive", legacyArchive(t, img.config, base, app)},
		{"Docker 25 OCI layout with manifest.json", engine25Archive(t, img)},
		{"OCI layout with gzip layers and index.json", ociGzipArchive(t, img)},
	}
	haves := []struct {
		name string
		have map[string]bool
		kept []bool
	}{
		{"node has none", map[string]bool{}, []bool{true, true}},
		{"node has the base", map[string]bool{ids[0]: true}, []bool{false, true}},
		{"node has both", map[string]bool{ids[0]: true, ids[1]: true}, []bool{false, false}},
	}
	for _, h := range haves {
		// The OCI archive for `ctr import` is the same whatever the format.
		ref, err := readSaved(bytes.NewReader(formats[0].archive), h.have)
		if err != nil {
			t.Fatal(err)
		}
		want := ociOf(t, ref)
		ref.cleanup()
		for _, f := range formats {
			for _, small := range []int64{smallEntry, 0} {
				t.Run(fmt.Sprintf("%s/%s/small=%d", f.name, h.name, small), func(t *testing.T) {
					s, err := readArchive(bytes.NewReader(f.archive), h.have, small)
					if err != nil {
						t.Fatal(err)
					}
					defer s.cleanup()
					if !bytes.Equal(s.config, img.config) {
						t.Errorf("config = %s, want %s", s.config, img.config)
					}
					if len(s.layers) != 2 {
						t.Fatalf("%d layers, want 2", len(s.layers))
					}
					for i, l := range s.layers {
						if l.digest != ids[i] || l.size != int64(len(img.layers[i])) {
							t.Errorf("layer %d: digest %s size %d, want %s size %d", i, l.digest, l.size, ids[i], len(img.layers[i]))
						}
						got := content(t, l)
						switch {
						case h.kept[i] && !bytes.Equal(got, img.layers[i]):
							t.Errorf("layer %d holds %d bytes, want the uncompressed layer (%d bytes)", i, len(got), len(img.layers[i]))
						case !h.kept[i] && got != nil:
							t.Errorf("layer %d, which the node has, was kept", i)
						}
					}
					if got := ociOf(t, s); !bytes.Equal(got, want) {
						t.Errorf("writeOCI differs from the legacy archive's (%d bytes, want %d)", len(got), len(want))
					}
				})
			}
		}
	}
}

// TestReadSavedCleansUp: compressed layers go once decompressed, and the
// temporary files go with cleanup.
func TestReadSavedCleansUp(t *testing.T) {
	img := newTestImage(t)
	s, err := readArchive(bytes.NewReader(ociGzipArchive(t, img)), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(s.tmp + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if sniff(b) == gzipped {
			t.Errorf("compressed copy %s kept after decompressing it", e.Name())
		}
	}
	s.cleanup()
	if _, err := os.Stat(s.tmp); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", s.tmp, err)
	}
}

// TestReadSavedSharedLayer: a layer listed twice (a symlink in a legacy
// archive) is read once and sent as one blob.
func TestReadSavedSharedLayer(t *testing.T) {
	empty := layerTar(t, "marker", "")
	app := layerTar(t, "app/run.sh", "app")
	img := imageOf(t, empty, app, empty)
	archive := archiveOf(t,
		reg("aaaa/layer.tar", empty),
		reg("bbbb/layer.tar", app),
		entry{name: "cccc/layer.tar", typeflag: tar.TypeSymlink, link: "../aaaa/layer.tar"},
		reg("cfg.json", img.config),
		reg("manifest.json", mustJSON(t, []map[string]any{{"Config": "cfg.json", "Layers": []string{"aaaa/layer.tar", "bbbb/layer.tar", "cccc/layer.tar"}}})),
	)
	s, err := readArchive(bytes.NewReader(archive), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.cleanup()
	if len(s.layers) != 3 || s.layers[2].digest != digestOf(empty) || !bytes.Equal(content(t, s.layers[2]), empty) {
		t.Fatalf("layers %+v, want empty, app, empty", s.layers)
	}
	tr := tar.NewReader(bytes.NewReader(ociOf(t, s)))
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[h.Name] {
			t.Errorf("%s written twice", h.Name)
		}
		seen[h.Name] = true
	}
}

func TestReadSavedRefuses(t *testing.T) {
	img := newTestImage(t)
	base := img.layers[0]
	zstd := append([]byte{0x28, 0xb5, 0x2f, 0xfd}, "not really zstd"...)
	ociWith := func(config []byte, layer []byte, mediaType string) []byte {
		m := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ociManifestType,
			"config": descriptor("application/vnd.oci.image.config.v1+json", config),
			"layers": []any{descriptor(mediaType, layer)}})
		return archiveOf(t, reg(blobName(digestOf(layer)), layer), reg(blobName(digestOf(config)), config), reg(blobName(digestOf(m)), m),
			reg("index.json", mustJSON(t, map[string]any{"schemaVersion": 2, "manifests": []any{descriptor(ociManifestType, m)}})))
	}
	oneLayer := imageOf(t, base).config
	for _, tc := range []struct {
		name     string
		archive  []byte
		fallback bool   // errNotLegacyArchive: load the whole archive instead
		want     string // in the error
	}{
		{"not a tar", bytes.Repeat([]byte("garbage!"), 200), false, "reading the saved image"},
		{"no image in the tar", archiveOf(t, reg("README", []byte("hello"))), true, "neither manifest.json nor index.json"},
		{"blobs without an index", archiveOf(t, reg("blobs/sha256/abc", []byte("x"))), true, "neither manifest.json nor index.json"},
		{"manifest.json not JSON", archiveOf(t, reg("manifest.json", []byte("{"))), true, "manifest.json"},
		{"manifest.json naming a missing layer", archiveOf(t, reg("c.json", oneLayer),
			reg("manifest.json", mustJSON(t, []map[string]any{{"Config": "c.json", "Layers": []string{"x/layer.tar"}}}))), true, "no layer x/layer.tar"},
		{"manifest.json with two images", archiveOf(t, reg("manifest.json", []byte(`[{"Config":"a"},{"Config":"b"}]`))), true, "2 images"},
		{"index.json naming a missing manifest", archiveOf(t, reg("index.json", mustJSON(t, map[string]any{"manifests": []any{descriptor(ociManifestType, []byte("m"))}}))), true, "no image manifest"},
		{"blob not matching its name", archiveOf(t, reg(blobName(digestOf([]byte("a"))), []byte("b"))), false, "holds content of digest"},
		{"gzip layer not matching the config", ociWith(oneLayer, gzipBytes(t, layerTar(t, "other", "x")), "application/vnd.oci.image.layer.v1.tar+gzip"), false, "its config says"},
		{"zstd layer", ociWith(oneLayer, zstd, "application/vnd.oci.image.layer.v1.tar+zstd"), true, "zstd"},
		{"config listing other layers", ociWith(img.config, base, "application/vnd.oci.image.layer.v1.tar"), true, "the config lists 2 layers, the manifest 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := readSaved(bytes.NewReader(tc.archive), nil)
			if err == nil {
				s.cleanup()
				t.Fatal("read without error")
			}
			if errors.Is(err, errNotLegacyArchive) != tc.fallback {
				t.Errorf("err = %v; wraps errNotLegacyArchive: %v, want %v", err, !tc.fallback, tc.fallback)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
