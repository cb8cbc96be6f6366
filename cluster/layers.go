package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
)

// errNotLegacyArchive means `docker save` did not produce the legacy
// docker-archive layout this loader understands; the caller loads the full
// archive instead.
var errNotLegacyArchive = errors.New("not a legacy docker-archive")

// nodeBlobs lists the content digests a node's containerd holds.
func nodeBlobs(n nodes.Node) (map[string]bool, error) {
	var out bytes.Buffer
	if err := n.Command("ctr", "--namespace=k8s.io", "content", "ls", "-q").SetStdout(&out).Run(); err != nil {
		return nil, fmt.Errorf("listing the content of node %s: %w", n.String(), err)
	}
	have := map[string]bool{}
	for _, l := range strings.Fields(out.String()) {
		have[l] = true
	}
	return have, nil
}

// savedImage is a `docker save` archive taken apart: the config, the
// manifest's layer order, and each layer as a temporary file with its digest.
type savedImage struct {
	config []byte
	layers []savedLayer // in manifest order
	tmp    string
}

type savedLayer struct {
	digest string // sha256:<hex> of the uncompressed tar, the layer's diffID
	size   int64
	file   string // "" when the node already has it (not kept)
}

func (s *savedImage) cleanup() { _ = os.RemoveAll(s.tmp) }

// readSaved reads a legacy docker-archive (Docker before 25) and keeps only
// the layers the node lacks, on disk.
func readSaved(r io.Reader, have map[string]bool) (*savedImage, error) {
	tmp, err := os.MkdirTemp("", "devenv-load-")
	if err != nil {
		return nil, err
	}
	s := &savedImage{tmp: tmp}
	ok := false
	defer func() {
		if !ok {
			s.cleanup()
		}
	}()
	layers := map[string]savedLayer{} // archive path -> layer
	files := map[string][]byte{}      // small JSON files by path
	tr := tar.NewReader(r)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the saved image: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		switch {
		case path.Base(h.Name) == "layer.tar":
			f, err := os.Create(path.Join(tmp, fmt.Sprintf("layer-%d", i)))
			if err != nil {
				return nil, err
			}
			hsh := sha256.New()
			n, err := io.Copy(io.MultiWriter(f, hsh), tr)
			_ = f.Close()
			if err != nil {
				return nil, fmt.Errorf("reading layer %s: %w", h.Name, err)
			}
			l := savedLayer{digest: "sha256:" + hex.EncodeToString(hsh.Sum(nil)), size: n, file: f.Name()}
			if have[l.digest] {
				_ = os.Remove(l.file)
				l.file = ""
			}
			layers[h.Name] = l
		case strings.HasSuffix(h.Name, ".json") && !strings.Contains(h.Name, "/"):
			b, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, err
			}
			files[h.Name] = b
		case strings.HasPrefix(h.Name, "blobs/"):
			return nil, errNotLegacyArchive
		}
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		return nil, fmt.Errorf("%w: manifest.json: %v", errNotLegacyArchive, err)
	}
	s.config = files[manifest[0].Config]
	if s.config == nil {
		return nil, fmt.Errorf("%w: no config %s", errNotLegacyArchive, manifest[0].Config)
	}
	for _, p := range manifest[0].Layers {
		l, found := layers[p]
		if !found {
			return nil, fmt.Errorf("%w: no layer %s", errNotLegacyArchive, p)
		}
		s.layers = append(s.layers, l)
	}
	ok = true
	return s, nil
}

// writeOCI writes the image as an OCI layout archive holding the config, the
// manifest and only the layers read into files. containerd imports it and
// finds the other layers in its content store.
func (s *savedImage) writeOCI(w io.Writer, name string) error {
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(h[:]) }
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: sum(s.config), Size: int64(len(s.config))}}
	for _, l := range s.layers {
		m.Layers = append(m.Layers, desc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: l.digest, Size: l.size})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tag := name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []desc{{MediaType: m.MediaType, Digest: sum(mb), Size: int64(len(mb)),
			Annotations: map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}},
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add(blob(m.Config.Digest), s.config); err != nil {
		return err
	}
	for _, l := range s.layers {
		if l.file == "" {
			continue
		}
		f, err := os.Open(l.file)
		if err != nil {
			return err
		}
		err = tw.WriteHeader(&tar.Header{Name: blob(l.digest), Mode: 0o644, Size: l.size})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	if err := add(blob(sum(mb)), mb); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	return tw.Close()
}

// loadLayers loads ref into node n sending only the layers n lacks. It
// returns errNotLegacyArchive (wrapped) when Docker's archive format is not
// the one it reads, so the caller can fall back to a full load.
func loadLayers(ctx context.Context, docker *client.Client, n nodes.Node, ref string) (sent, total int, err error) {
	have, err := nodeBlobs(n)
	if err != nil {
		return 0, 0, err
	}
	rc, err := docker.ImageSave(ctx, []string{ref})
	if err != nil {
		return 0, 0, fmt.Errorf("saving image %s from Docker: %w", ref, err)
	}
	saved, err := readSaved(rc, have)
	_ = rc.Close()
	if err != nil {
		return 0, 0, err
	}
	defer saved.cleanup()
	for _, l := range saved.layers {
		if l.file != "" {
			sent++
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(saved.writeOCI(pw, ref)) }()
	err = nodeutils.LoadImageArchive(n, pr)
	_ = pr.CloseWithError(err)
	if err != nil {
		return 0, 0, fmt.Errorf("loading image %s into node %s: %w", ref, n.String(), err)
	}
	return sent, len(saved.layers), nil
}
