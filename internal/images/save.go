package images

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
)

// ErrTarget is returned (wrapped) by CheckTarget and Save when the archive
// cannot be written where asked: a missing folder, a folder in its place,
// no permission.
var ErrTarget = errors.New("cannot write the archive there")

// SaveOptions tune SaveWith.
type SaveOptions struct {
	// Progress, when set, is called about every ProgressEvery while the
	// archive is written, with the bytes written to the file so far and the
	// time since the start.
	Progress      func(written int64, elapsed time.Duration)
	ProgressEvery time.Duration // 0: one second
}

// Save writes the images refs into one archive in `docker save` format, so
// another machine can Load everything an environment needs. A file name
// ending in .gz or .tgz is gzip-compressed. The file appears only when
// complete.
func Save(ctx context.Context, cli *client.Client, file string, refs []string) error {
	_, err := SaveWith(ctx, cli, file, refs, SaveOptions{})
	return err
}

// CheckTarget reports, before any long work, whether an archive can be
// written at file: its folder exists and takes a new file. The error wraps
// ErrTarget.
func CheckTarget(file string) error {
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: the folder %s does not exist", ErrTarget, file, dir)
	case err != nil:
		return fmt.Errorf("%w: %s: %v", ErrTarget, file, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s: %s is not a folder", ErrTarget, file, dir)
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return fmt.Errorf("%w: %s is a folder", ErrTarget, file)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTarget, file, errors.Unwrap(err))
	}
	tmp.Close()
	return os.Remove(tmp.Name())
}

// SaveWith is Save with options, and returns the size of the file written.
// On an error or a cancelled ctx (Ctrl-C) the partial archive, written
// beside file under a hidden temporary name, is removed and file is left
// as it was.
func SaveWith(ctx context.Context, cli *client.Client, file string, refs []string, opts SaveOptions) (int64, error) {
	if len(refs) == 0 {
		return 0, errors.New("saving images: no images to save (build stand-ins with `devenv images build`)")
	}
	for _, ref := range refs {
		if _, err := cli.ImageInspect(ctx, ref); err != nil {
			if cerrdefs.IsNotFound(err) {
				return 0, fmt.Errorf("saving images: %s is not present (build it with `devenv images build` or pull it)", ref)
			}
			return 0, fmt.Errorf("inspecting %s: %w", ref, err)
		}
	}
	if err := CheckTarget(file); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return 0, fmt.Errorf("saving images to %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("saving images to %s: %w", file, err)
	}
	cw := &countingWriter{w: tmp}
	stop := every(opts.ProgressEvery, func(elapsed time.Duration) {
		if opts.Progress != nil {
			opts.Progress(cw.n.Load(), elapsed)
		}
	})
	err = saveTo(ctx, cli, cw, refs, compressed(file))
	stop()
	if err != nil {
		tmp.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return 0, fmt.Errorf("saving images to %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("saving images to %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return 0, fmt.Errorf("saving images to %s: %w", file, err)
	}
	return cw.n.Load(), nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// every calls f with the elapsed time every period (one second when 0)
// until the returned stop is called.
func every(period time.Duration, f func(elapsed time.Duration)) (stop func()) {
	if period <= 0 {
		period = time.Second
	}
	start := time.Now()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f(time.Since(start))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
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

// LoadOptions tune LoadWith.
type LoadOptions struct {
	// Log receives one line per image loaded; nil is silent.
	Log *log.Logger
	// Progress, when set, is called about every ProgressEvery while the
	// archive is read, with the bytes of file read so far, the file's size
	// and the time since the start.
	Progress      func(read, size int64, elapsed time.Duration)
	ProgressEvery time.Duration // 0: one second
}

// Load loads every image in an archive written by Save (or `docker save`),
// gzip-compressed or not, logs one line per image and returns what the
// engine reported loading.
func Load(ctx context.Context, cli *client.Client, file string, lg *log.Logger) ([]string, error) {
	return LoadWith(ctx, cli, file, LoadOptions{Log: lg})
}

// LoadWith is Load with options.
func LoadWith(ctx context.Context, cli *client.Client, file string, opts LoadOptions) ([]string, error) {
	lg := opts.Log
	if lg == nil {
		lg = log.Nop()
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("loading images: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	cr := &countingReader{r: f}
	stop := every(opts.ProgressEvery, func(elapsed time.Duration) {
		if opts.Progress != nil {
			opts.Progress(cr.n.Load(), size, elapsed)
		}
	})
	defer stop()
	br := bufio.NewReaderSize(cr, 1<<20)
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
