package registryx

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// unpacked is an image read out of a `docker save` archive: its config,
// and each layer uncompressed in a file named after its diffID.
type unpacked struct {
	dir     string
	config  []byte
	diffIDs []string         // in order, base first
	sizes   map[string]int64 // diffID -> uncompressed size
}

func (u *unpacked) open(diffID string) (io.ReadCloser, error) {
	f, err := os.Open(u.layerPath(diffID))
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", short(diffID), err)
	}
	return f, nil
}

func (u *unpacked) layerPath(diffID string) string {
	return filepath.Join(u.dir, strings.TrimPrefix(diffID, "sha256:")+".tar")
}

func (u *unpacked) remove() { _ = os.RemoveAll(u.dir) }

// maxJSON bounds the JSON files (manifests, configs) kept in memory.
const maxJSON = 16 << 20

// unpackArchive reads a `docker save` archive of one image, in either
// format Docker writes (the legacy docker-archive before Docker 25, an OCI
// image layout after; both carry a manifest.json), into dir: every layer,
// uncompressed, as <diffID hex>.tar, in one pass over the stream.
func unpackArchive(r io.Reader, dir string) (*unpacked, error) {
	u := &unpacked{dir: dir, sizes: map[string]int64{}}
	jsons := map[string][]byte{}
	links := map[string]string{}
	byEntry := map[string]string{} // entry path -> diffID of the layer it holds
	tr := tar.NewReader(r)
	br := bufio.NewReaderSize(nil, 1<<20)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch h.Typeflag {
		case tar.TypeSymlink:
			links[name] = strings.TrimPrefix(path.Clean("/"+path.Join(path.Dir(name), h.Linkname)), "/")
			continue
		case tar.TypeLink:
			links[name] = strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
			continue
		case tar.TypeReg:
		default:
			continue
		}
		br.Reset(tr)
		head, _ := br.Peek(4)
		switch {
		case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			return nil, fmt.Errorf("%s is a zstd-compressed layer, which devenv does not read", name)
		case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
			zr, err := gzip.NewReader(br)
			if err != nil {
				return nil, fmt.Errorf("decompressing %s: %w", name, err)
			}
			n++
			d, err := u.writeLayer(zr, n)
			if err != nil {
				return nil, fmt.Errorf("decompressing %s: %w", name, err)
			}
			byEntry[name] = d
		case len(head) > 0 && (head[0] == '{' || head[0] == '['):
			if h.Size > maxJSON {
				return nil, fmt.Errorf("%s: %d bytes of JSON", name, h.Size)
			}
			b, err := io.ReadAll(br)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", name, err)
			}
			jsons[name] = b
		case h.Size < 1024:
			// Not a layer (a tar is at least two blocks): VERSION files
			// and the like.
		default:
			n++
			d, err := u.writeLayer(br, n)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", name, err)
			}
			byEntry[name] = d
		}
	}
	resolve := func(p string) string {
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		for range 16 {
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return p
	}
	mb, ok := jsons[resolve("manifest.json")]
	if !ok {
		return nil, errors.New("the archive has no manifest.json")
	}
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(mb, &manifest); err != nil {
		return nil, fmt.Errorf("reading manifest.json: %w", err)
	}
	if len(manifest) != 1 {
		return nil, fmt.Errorf("manifest.json lists %d images, not one", len(manifest))
	}
	if u.config, ok = jsons[resolve(manifest[0].Config)]; !ok {
		return nil, fmt.Errorf("the archive has no config %s", manifest[0].Config)
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(u.config, &cfg); err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(manifest[0].Layers) {
		return nil, fmt.Errorf("the config lists %d layers, manifest.json %d", len(cfg.RootFS.DiffIDs), len(manifest[0].Layers))
	}
	for i, p := range manifest[0].Layers {
		got, want := byEntry[resolve(p)], cfg.RootFS.DiffIDs[i]
		if got != want {
			return nil, fmt.Errorf("layer %s holds diffID %q, the config says %s", p, got, want)
		}
	}
	u.diffIDs = cfg.RootFS.DiffIDs
	return u, nil
}

// writeLayer copies an uncompressed layer into its file and returns its
// diffID.
func (u *unpacked) writeLayer(r io.Reader, n int) (string, error) {
	tmp := filepath.Join(u.dir, fmt.Sprintf(".layer-%d", n))
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp, u.layerPath(d)); err != nil {
		return "", err
	}
	u.sizes[d] = size
	return d, nil
}
