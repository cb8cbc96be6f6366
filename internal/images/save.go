package images

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
)

// Save writes the images refs into one archive in `docker save` format, so
// another machine can Load everything an environment needs. A file name
// ending in .gz or .tgz is gzip-compressed. The file appears only when
// complete.
func Save(ctx context.Context, cli *client.Client, file string, refs []string) error {
	if len(refs) == 0 {
		return errors.New("saving images: no images to save (build stand-ins with `devenv images build`)")
	}
	for _, ref := range refs {
		if _, err := cli.ImageInspect(ctx, ref); err != nil {
			if cerrdefs.IsNotFound(err) {
				return fmt.Errorf("saving images: %s is not present (build it with `devenv images build` or pull it)", ref)
			}
			return fmt.Errorf("inspecting %s: %w", ref, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("saving images to %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("saving images to %s: %w", file, err)
	}
	if err := saveTo(ctx, cli, tmp, refs, compressed(file)); err != nil {
		tmp.Close()
		return fmt.Errorf("saving images to %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving images to %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("saving images to %s: %w", file, err)
	}
	return nil
}

func compressed(file string) bool {
	return strings.HasSuffix(file, ".gz") || strings.HasSuffix(file, ".tgz")
}

func saveTo(ctx context.Context, cli *client.Client, w io.Writer, refs []string, gz bool) error {
	res, err := cli.ImageSave(ctx, refs)
	if err != nil {
		return err
	}
	defer res.Close()
	bw := bufio.NewWriterSize(w, 1<<20)
	if !gz {
		if _, err := io.Copy(bw, res); err != nil {
			return err
		}
		return bw.Flush()
	}
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, res); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// Load loads every image in an archive written by Save (or `docker save`),
// gzip-compressed or not, logs one line per image and returns what the
// engine reported loading.
func Load(ctx context.Context, cli *client.Client, file string, lg *log.Logger) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("loading images: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("loading images from %s: %w", file, err)
		}
		defer zr.Close()
		r = zr
	}
	res, err := cli.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return nil, fmt.Errorf("loading images from %s: %w", file, err)
	}
	defer res.Close()
	var loaded []string
	err = dockerx.ReadStream(res, dockerx.StreamOptions{Line: func(line string) {
		for _, prefix := range []string{"Loaded image: ", "Loaded image ID: "} {
			if ref, ok := strings.CutPrefix(line, prefix); ok {
				loaded = append(loaded, ref)
				lg.Infof("✓ loaded %s", ref)
			}
		}
	}})
	if err != nil {
		return loaded, fmt.Errorf("loading images from %s: %w", file, err)
	}
	if len(loaded) == 0 {
		return nil, fmt.Errorf("loading images from %s: the archive held no images", file)
	}
	return loaded, nil
}
