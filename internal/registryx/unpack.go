package registryx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/devenv-tool/devenv/internal/imagearchive"
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

// unpackArchive reads a `docker save` archive of one image, in either
// format Docker writes (the legacy docker-archive before Docker 25, an OCI
// image layout after; both carry a manifest.json), into dir: every layer,
// uncompressed, as <diffID hex>.tar, in one pass over the stream.
func unpackArchive(r io.Reader, dir string) (*unpacked, error) {
	u := &unpacked{dir: dir, sizes: map[string]int64{}}
	byEntry := map[string]string{} // entry path -> diffID of the layer it holds
	n := 0
	a, err := imagearchive.Read(r, func(e *imagearchive.Entry) error {
		if e.Compression == imagearchive.Uncompressed && e.Size < 1024 {
			return nil // not a layer (a tar is at least two blocks): VERSION files and the like
		}
		rc, err := e.Tar()
		if err != nil {
			return err
		}
		defer rc.Close()
		n++
		d, err := u.writeLayer(rc, n)
		if err != nil {
			return fmt.Errorf("reading %s: %w", e.Name, err)
		}
		byEntry[e.Name] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := a.JSON("manifest.json"); !ok {
		return nil, errors.New("the archive has no manifest.json")
	}
	img, err := a.One()
	if err != nil {
		return nil, err
	}
	if img.Config == nil {
		return nil, fmt.Errorf("the archive has no config %s", img.ConfigPath)
	}
	u.config = img.Config
	for _, l := range img.Layers {
		if l.DiffID == "" {
			return nil, fmt.Errorf("the config lists no layers, the manifest %d", len(img.Layers))
		}
		if got := byEntry[l.Path]; got != l.DiffID {
			return nil, fmt.Errorf("layer %s holds diffID %q, the config says %s", l.Path, got, l.DiffID)
		}
		u.diffIDs = append(u.diffIDs, l.DiffID)
	}
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
