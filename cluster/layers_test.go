package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// legacyArchive builds what Docker 20.10's `docker save` writes.
func legacyArchive(t *testing.T, config []byte, layers ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for i, l := range layers {
		p := strings.Repeat(string(rune('a'+i)), 8) + "/layer.tar"
		add(p, l)
		paths = append(paths, p)
	}
	cfgName := strings.TrimPrefix(digestOf(config), "sha256:") + ".json"
	add(cfgName, config)
	m, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"devenv.local/x:1"}, "Layers": paths}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLayerDiffArchive(t *testing.T) {
	base, app := []byte("base layer bytes"), []byte("app layer bytes")
	config := []byte(`{"rootfs":{"type":"layers"}}`)
	archive := legacyArchive(t, config, base, app)

	// The node has the base layer: only the app layer is sent.
	saved, err := readSaved(bytes.NewReader(archive), map[string]bool{digestOf(base): true})
	if err != nil {
		t.Fatal(err)
	}
	defer saved.cleanup()
	var out bytes.Buffer
	if err := saved.writeOCI(&out, "devenv.local/x:1"); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	if _, ok := files[blob(digestOf(base))]; ok {
		t.Error("the base layer the node has was sent")
	}
	if got := files[blob(digestOf(app))]; !bytes.Equal(got, app) {
		t.Errorf("app layer = %q, want %q", got, app)
	}
	if got := files[blob(digestOf(config))]; !bytes.Equal(got, config) {
		t.Errorf("config = %q", got)
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json %s: %v", files["index.json"], err)
	}
	if n := index.Manifests[0].Annotations["io.containerd.image.name"]; n != "devenv.local/x:1" {
		t.Errorf("image name %q", n)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct {
			Digest string
			Size   int64
		}
	}
	if err := json.Unmarshal(files[blob(index.Manifests[0].Digest)], &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != digestOf(config) || len(m.Layers) != 2 || m.Layers[0].Digest != digestOf(base) ||
		m.Layers[1].Digest != digestOf(app) || m.Layers[0].Size != int64(len(base)) {
		t.Errorf("manifest %+v does not list config and both layers in order", m)
	}
	if _, ok := files["oci-layout"]; !ok {
		t.Error("no oci-layout file")
	}
}

func TestCRISnapshotter(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{"version = 4\n[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    snapshotter = 'native'\n  [plugins.'x']\n    snapshotter = 'other'\n", "native"},
		{"version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  # comment\n  snapshotter = \"fuse-overlayfs\"\n", "fuse-overlayfs"},
		{"version = 3\n[plugins.'io.containerd.transfer.v1.local']\n  snapshotter = 'zfs'\n", "overlayfs"},
		{"", "overlayfs"},
	} {
		if got := criSnapshotter(tc.config); got != tc.want {
			t.Errorf("criSnapshotter(%q) = %q, want %q", tc.config, got, tc.want)
		}
	}
}
