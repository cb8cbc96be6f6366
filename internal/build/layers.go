package build

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileSum is one entry of a layer's index: what LiveDiff compares about a
// file, without its content.
type FileSum struct {
	Name     string // no leading or trailing slash
	Typeflag byte
	Mode     int64
	Uid, Gid int
	Linkname string
	Size     int64
	Sum      [sha256.Size]byte // of the content (regular files only)
}

// same reports whether a container holding a has b's file already.
func (a *FileSum) same(b *FileSum) bool {
	return a.Typeflag == b.Typeflag && a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid &&
		a.Linkname == b.Linkname && a.Size == b.Size && a.Sum == b.Sum
}

// base reports whether the layer came from the base image (no bytes of
// devenv's own, neither in memory nor in a file).
func (l *Layer) base() bool { return l.Data == nil && l.Path == "" }

// open returns the layer's tar, from memory or from its file.
func (l *Layer) open() (io.ReadCloser, error) {
	if l.Data != nil {
		return io.NopCloser(bytes.NewReader(l.Data)), nil
	}
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", shortDigest(l.DiffID), err)
	}
	return f, nil
}

// index returns the layer's file index, reading the tar when the layer
// has none yet (Files is not set on it: images are shared).
func (l *Layer) index() ([]FileSum, error) {
	if l.Files != nil || l.base() {
		return l.Files, nil
	}
	r, err := l.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	files, err := indexTar(r)
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", shortDigest(l.DiffID), err)
	}
	return files, nil
}

// indexTar reads a layer tar into its index.
func indexTar(r io.Reader) ([]FileSum, error) {
	files := []FileSum{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		e := FileSum{Name: strings.Trim(h.Name, "/"), Typeflag: h.Typeflag, Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, Linkname: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			s := sha256.New()
			n, err := io.Copy(s, tr)
			if err != nil {
				return nil, err
			}
			e.Size = n
			s.Sum(e.Sum[:0])
		}
		files = append(files, e)
	}
}

// layerExt ends the name of every layer file in a layer folder.
const layerExt = ".tar"

// layerPath is the file of layer diffID in layer folder dir.
func layerPath(dir, diffID string) string {
	return filepath.Join(dir, strings.TrimPrefix(diffID, "sha256:")+layerExt)
}

// Store keeps the image's own layers in dir instead of memory: each
// layer's tar goes to a file named after its digest (shared by the images
// holding that layer), Files indexes it, and its Data is dropped. LiveDiff
// and loads read the files back when they need the bytes. Call it before
// the image is shared: it changes a's layers.
func (a *Assembled) Store(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the layer folder: %w", err)
	}
	for i := range a.Layers {
		l := &a.Layers[i]
		if l.Data == nil {
			continue
		}
		if l.Files == nil {
			files, err := indexTar(bytes.NewReader(l.Data))
			if err != nil {
				return fmt.Errorf("indexing layer %s: %w", shortDigest(l.DiffID), err)
			}
			l.Files = files
		}
		p := layerPath(dir, l.DiffID)
		if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(l.Data)) {
			now := time.Now() // in use again: not for PruneLayers
			_ = os.Chtimes(p, now, now)
		} else if err := writeAtomic(p, l.Data); err != nil {
			return fmt.Errorf("storing layer %s: %w", shortDigest(l.DiffID), err)
		}
		l.Path, l.Data = p, nil
	}
	return nil
}

// writeAtomic writes b to p through a temporary file, so that a reader
// never sees half a layer.
func writeAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".layer-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// pruneGrace is how old an unused layer file must be before PruneLayers
// removes it: a build still storing it is never caught.
const pruneGrace = time.Minute

// PruneLayers removes the layer files in dir that none of keep holds, once
// they are older than a minute. A missing dir is fine.
func PruneLayers(dir string, keep []*Assembled) error {
	used := map[string]bool{}
	for _, a := range keep {
		if a == nil {
			continue
		}
		for _, l := range a.Layers {
			if l.Path != "" {
				used[filepath.Base(l.Path)] = true
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pruning layers: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if used[name] || (!strings.HasSuffix(name, layerExt) && !strings.HasPrefix(name, ".layer-")) {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < pruneGrace {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pruning layers: %w", err)
	}
	return nil
}

// LayerDir is where images built with this State keep their layers (see
// Assembled.Store); "" for a nil State.
func (s *State) LayerDir() string {
	if s == nil || s.path == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(s.path), "layers")
}
