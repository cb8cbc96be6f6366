package build

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// racyWindow is how close to a scan a file's modification time may be
// before its size and time no longer vouch for its content: a file
// rewritten with the same size within the file system's time granularity
// keeps both.
const racyWindow = 2 * time.Second

// ContextHashes caches the content hashes of one service's build context,
// keyed by path, size, mode and modification time, so that a save hashes
// only what changed. Its zero value is ready; it is safe for concurrent
// use.
type ContextHashes struct {
	mu    sync.Mutex
	files map[string]hashedFile
	scan  time.Time // when the last scan started
}

type hashedFile struct {
	size  int64
	mode  fs.FileMode
	mtime time.Time
	sum   [sha256.Size]byte
}

// Digest returns a digest of what spec's build context sends (the paths
// .dockerignore keeps, their modes and contents, the Dockerfile's bytes):
// the same content gives the same digest whatever the modification times.
// A file is read only when it is new, its size, mode or modification time
// changed, changed names it (the paths a watcher reported, relative to
// the context, slash-separated), or its modification time lies within 2 s
// of the previous scan (it may have been rewritten unseen).
func (c *ContextHashes) Digest(spec Spec, opts ContextOptions, changed []string) (string, error) {
	if err := spec.checkContext(); err != nil {
		return "", err
	}
	dfBytes, dfName, err := dockerfileOf(spec, opts)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	forced := make(map[string]bool, len(changed))
	for _, p := range changed {
		forced[p] = true
	}
	start := time.Now()
	prev := c.scan
	old := c.files
	files := make(map[string]hashedFile, len(old))
	h := sha256.New()
	dfSum := sha256.Sum256(dfBytes)
	fmt.Fprintf(h, "dockerfile %q %x\n", dfName, dfSum)
	var line []byte
	err = walkContext(spec, dfName, func(p, rel string, d fs.DirEntry) error {
		if rel == dfName {
			return nil // hashed above
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := hashedFile{size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.sum = sha256.Sum256([]byte(target))
		case fi.Mode().IsRegular():
			o, ok := old[rel]
			racy := !prev.IsZero() && e.mtime.After(prev.Add(-racyWindow))
			if ok && !forced[rel] && !racy && o.size == e.size && o.mode == e.mode && o.mtime.Equal(e.mtime) {
				e.sum = o.sum
				break
			}
			if e.sum, err = hashFile(p); err != nil {
				return err
			}
		}
		files[rel] = e
		// rel, NUL, mode, size, sum: no path holds a NUL.
		line = append(append(line[:0], rel...), 0)
		line = binary.LittleEndian.AppendUint32(line, uint32(e.mode))
		line = binary.LittleEndian.AppendUint64(line, uint64(e.size))
		h.Write(append(line, e.sum[:]...))
		return nil
	})
	if err != nil {
		return "", err
	}
	c.files, c.scan = files, start
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(p string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("hashing %s: %w", p, err)
	}
	h.Sum(sum[:0])
	return sum, nil
}
