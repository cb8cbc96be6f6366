// Package registryx turns devenv's images into the parts package registry
// pushes: an image devenv assembled (internal/build) is pushed from its own
// layer files, with the base image's layers read out of the Docker engine
// only when they are needed; an image the engine built is read out of the
// engine (`docker save`) and pushed the same way.
//
// Layers are pushed uncompressed (their blob digest is their diffID), so
// every digest is known without reading a byte, and a registry that has a
// layer costs one HEAD. What the engine gives is unpacked into a temporary
// folder under the folder the caller names (in devenv's state folder) and
// removed when the push is done; the only thing kept there is the size of
// each base layer (sizes.json), which the manifest needs and the engine
// does not tell without a `docker save`.
package registryx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/registry"
)

// Source reads images for a push.
type Source struct {
	Docker *client.Client
	// Dir is a folder of devenv's own (in the state folder) for what a push
	// reads out of the engine: created when needed.
	Dir string

	// save is `docker save` of one image (tests replace it).
	save func(ctx context.Context, ref string) (io.ReadCloser, error)
}

func (s *Source) saveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	if s.save != nil {
		return s.save(ctx, ref)
	}
	if s.Docker == nil {
		return nil, fmt.Errorf("reading image %s: no Docker engine", ref)
	}
	rc, err := s.Docker.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, fmt.Errorf("saving image %s from Docker: %w", ref, err)
	}
	return rc, nil
}

// Assembled returns the parts of an image devenv assembled. Its own layers
// are read from memory or their files; the base image's layers from the
// engine, once, and only when the registry lacks one of them (or their
// sizes are not known yet). Call done when the push is over.
func (s *Source) Assembled(ctx context.Context, a *build.Assembled) (img registry.Image, done func(), err error) {
	img = registry.Image{Config: a.Config}
	var base *unpacked
	var once sync.Once
	var baseErr error
	// fromEngine unpacks the base image, once, with the context of the
	// call (the push that opens a layer runs within it).
	fromEngine := func() (*unpacked, error) {
		once.Do(func() {
			if a.Base == "" {
				baseErr = errors.New("the image has base layers but names no base image")
				return
			}
			base, baseErr = s.unpack(ctx, a.Base)
		})
		return base, baseErr
	}
	done = func() {
		if base != nil {
			base.remove()
		}
	}
	sizes, err := readSizes(s.Dir)
	if err != nil {
		return registry.Image{}, nil, err
	}
	for _, l := range a.Layers {
		switch {
		case l.Data != nil:
			data := l.Data
			img.Layers = append(img.Layers, registry.Layer{Digest: l.DiffID, MediaType: registry.MediaTypeLayer, Size: int64(len(data)),
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
		case l.Path != "":
			p := l.Path
			img.Layers = append(img.Layers, registry.Layer{Digest: l.DiffID, MediaType: registry.MediaTypeLayer, Size: l.Size,
				Open: func() (io.ReadCloser, error) { return os.Open(p) }})
		default:
			size, ok := sizes[l.DiffID]
			if !ok {
				u, err := fromEngine()
				if err != nil {
					done()
					return registry.Image{}, nil, err
				}
				if size, ok = u.sizes[l.DiffID]; !ok {
					done()
					return registry.Image{}, nil, fmt.Errorf("base image %s has no layer %s", short(a.Base), l.DiffID)
				}
			}
			diffID := l.DiffID
			img.Layers = append(img.Layers, registry.Layer{Digest: diffID, MediaType: registry.MediaTypeLayer, Size: size,
				Open: func() (io.ReadCloser, error) {
					u, err := fromEngine()
					if err != nil {
						return nil, err
					}
					return u.open(diffID)
				}})
		}
	}
	return img, done, nil
}

// Engine returns the parts of image ref as the engine holds it (an image
// the engine's builder made, or any other). It reads the whole image out of
// the engine now. Call done when the push is over.
func (s *Source) Engine(ctx context.Context, ref string) (img registry.Image, done func(), err error) {
	u, err := s.unpack(ctx, ref)
	if err != nil {
		return registry.Image{}, nil, err
	}
	img = registry.Image{Config: u.config}
	for _, d := range u.diffIDs {
		diffID := d
		img.Layers = append(img.Layers, registry.Layer{Digest: diffID, MediaType: registry.MediaTypeLayer, Size: u.sizes[diffID],
			Open: func() (io.ReadCloser, error) { return u.open(diffID) }})
	}
	return img, u.remove, nil
}

// PushEngine pushes the engine's image ref as target, reading it out of
// the engine only when the registry does not hold target at the same
// config already.
func (s *Source) PushEngine(ctx context.Context, ref, target string, opts registry.PushOptions) (registry.PushResult, error) {
	if s.Docker != nil {
		ins, err := s.Docker.ImageInspect(ctx, ref)
		if err != nil {
			return registry.PushResult{}, fmt.Errorf("inspecting image %s: %w", ref, err)
		}
		have, err := registry.ConfigDigest(ctx, target, opts)
		if err != nil {
			return registry.PushResult{}, err
		}
		if have != "" && have == ins.ID {
			return registry.PushResult{Ref: target, Skipped: len(ins.RootFS.Layers) + 1}, nil
		}
	}
	img, done, err := s.Engine(ctx, ref)
	if err != nil {
		return registry.PushResult{}, err
	}
	defer done()
	return registry.Push(ctx, img, target, opts)
}

// unpack reads image ref out of the engine into a temporary folder under
// s.Dir and notes its layers' sizes in sizes.json.
func (s *Source) unpack(ctx context.Context, ref string) (*unpacked, error) {
	if s.Dir == "" {
		return nil, errors.New("no folder to read images out of the engine into")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", s.Dir, err)
	}
	tmp, err := os.MkdirTemp(s.Dir, "unpack-")
	if err != nil {
		return nil, fmt.Errorf("creating a folder to read image %s into: %w", ref, err)
	}
	rc, err := s.saveImage(ctx, ref)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	u, err := unpackArchive(rc, tmp)
	rc.Close()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("reading image %s out of Docker: %w", ref, err)
	}
	if err := addSizes(s.Dir, u.sizes); err != nil {
		u.remove()
		return nil, err
	}
	return u, nil
}

// sizesFile is the file in Source.Dir that keeps the sizes of the layers
// read out of the engine, by diffID.
const sizesFile = "sizes.json"

func readSizes(dir string) (map[string]int64, error) {
	sizes := map[string]int64{}
	if dir == "" {
		return sizes, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, sizesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return sizes, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer sizes: %w", err)
	}
	if err := json.Unmarshal(b, &sizes); err != nil {
		// A damaged file only costs a `docker save`: start over.
		return map[string]int64{}, nil
	}
	return sizes, nil
}

// addSizes merges sizes into the sizes file, through a temporary file so
// that a reader never sees half of it. Two devenvs writing at once may
// lose each other's additions, which only costs a later `docker save`.
func addSizes(dir string, add map[string]int64) error {
	sizes, err := readSizes(dir)
	if err != nil {
		return err
	}
	for d, n := range add {
		sizes[d] = n
	}
	b, err := json.Marshal(sizes)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".sizes-*")
	if err != nil {
		return fmt.Errorf("writing layer sizes: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, sizesFile))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing layer sizes: %w", err)
	}
	return nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
