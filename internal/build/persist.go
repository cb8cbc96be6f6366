package build

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A context cache (see contextCache) lives in memory; State also keeps it
// in a file of its folder between processes (SaveContexts), so that a new
// process neither reads every file of a large context again nor writes
// the layers the last one left in the layer folder:
//
//   - the files' entries come back as they were (mode, size, modification
//     time, link, content hash). The first scan of the new process is a
//     full one, as always: a file keeps its hash only when it looks as it
//     did, by the same rules as between two scans of one process (size,
//     mode and modification time to the nanosecond unchanged, and not
//     written within racyWindow of the scan that hashed it);
//   - the last image's COPY layers come back as chunks, each the layer
//     file of its digest in the layer folder: one that is gone or has
//     another size is written again (chunkOf checks before it takes one).
//
// A file of another devenv build, another format or another context
// folder is ignored, and so is a damaged one: the cache starts empty, as
// without a file.

// savedContextVersion changes when what a saved context means changes.
const savedContextVersion = 1

// savedContext is a contextCache in its file.
type savedContext struct {
	Version  int
	Build    string // devenvBuild()
	Dir      string
	DfName   string
	Ignore   string
	ChunkMin int
	Scan     time.Time
	Files    []savedFile
	Chunks   []savedChunk
}

type savedFile struct {
	Path   string
	Mode   fs.FileMode
	Size   int64
	Mtime  int64 // Unix nanoseconds
	Link   string
	Sum    [sha256.Size]byte
	Hashed bool
}

type savedChunk struct {
	Key   [sha256.Size]byte
	Layer Layer // Path, Data: none (the layer folder's file of DiffID)
	Sums  [][sha256.Size]byte
	Offs  []int64
}

// contextFile is where State keeps service's context cache; "" for a nil
// State or one without a folder.
func (s *State) contextFile(service string) string {
	if s == nil || s.path == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(s.path), "contexts", service+".gob")
}

// SaveContexts writes, for each service whose context changed since it was
// last loaded or saved, its context cache to State's folder (see
// savedContext), for the next process. A context whose last scan failed
// is not written.
func (s *State) SaveContexts() error {
	if s == nil || s.path == "" {
		return nil
	}
	s.mu.Lock()
	caches := maps.Clone(s.contexts)
	s.mu.Unlock()
	var errs []error
	for _, service := range slices.Sorted(maps.Keys(caches)) {
		if err := caches[service].save(s.contextFile(service), s.LayerDir()); err != nil {
			errs = append(errs, fmt.Errorf("keeping the build context of %q: %w", service, err))
		}
	}
	return errors.Join(errs...)
}

// save writes c to file p when it changed since it was loaded or saved.
func (c *contextCache) save(p, layerDir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full || c.gen == c.savedGen || c.files == nil {
		return nil
	}
	sc := savedContext{Version: savedContextVersion, Build: devenvBuild(), Dir: c.dir, DfName: c.dfName, Ignore: c.ignore, ChunkMin: c.chunkMin, Scan: c.scan}
	sc.Files = make([]savedFile, 0, len(c.files))
	for _, rel := range slices.Sorted(maps.Keys(c.files)) {
		f := c.files[rel]
		sf := savedFile{Path: rel, Mode: f.mode, Size: f.size, Mtime: f.mtime.UnixNano(), Link: f.link, Hashed: f.hashed}
		if f.hashed {
			sf.Sum = f.sum
		}
		sc.Files = append(sc.Files, sf)
	}
	for key, ch := range c.chunks {
		if ch.layer.Path == "" || ch.layer.Path != layerPath(layerDir, ch.layer.DiffID) {
			continue // in memory only, or not in the layer folder
		}
		l := ch.layer
		l.Path, l.Data = "", nil
		sch := savedChunk{Key: key, Layer: l}
		for _, sum := range slices.SortedFunc(maps.Keys(ch.at), func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) }) {
			sch.Sums = append(sch.Sums, sum)
			sch.Offs = append(sch.Offs, ch.at[sum])
		}
		sc.Chunks = append(sc.Chunks, sch)
	}
	slices.SortFunc(sc.Chunks, func(a, b savedChunk) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&sc); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	if err := writeAtomic(p, b.Bytes()); err != nil {
		return err
	}
	c.savedGen = c.gen
	return nil
}

// load fills a new, empty c from file p when p holds a usable saved
// context (see savedContext), and leaves it empty otherwise.
func (c *contextCache) load(p, layerDir string) {
	if p == "" {
		return
	}
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	var sc savedContext
	if err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&sc); err != nil {
		return
	}
	if sc.Version != savedContextVersion || sc.Build != devenvBuild() || sc.Dir == "" {
		return
	}
	files := make(map[string]*ctxFile, len(sc.Files))
	store := make([]ctxFile, len(sc.Files))
	for i, sf := range sc.Files {
		if !filepath.IsLocal(filepath.FromSlash(sf.Path)) {
			return
		}
		f := &store[i]
		f.mode, f.size, f.mtime, f.link = sf.Mode, sf.Size, time.Unix(0, sf.Mtime), sf.Link
		if sf.Hashed {
			f.sum, f.hashed = sf.Sum, true
		}
		files[sf.Path] = f
	}
	chunks := map[[sha256.Size]byte]*chunk{}
	if sc.ChunkMin == c.chunkMin && layerDir != "" {
		for _, sch := range sc.Chunks {
			if len(sch.Sums) != len(sch.Offs) || !strings.HasPrefix(sch.Layer.DiffID, "sha256:") || strings.ContainsAny(sch.Layer.DiffID, `/\`) {
				continue
			}
			ch := &chunk{layer: sch.Layer, at: make(map[[sha256.Size]byte]int64, len(sch.Sums))}
			ch.layer.Path = layerPath(layerDir, sch.Layer.DiffID)
			for i, sum := range sch.Sums {
				ch.at[sum] = sch.Offs[i]
			}
			chunks[sch.Key] = ch
		}
	}
	// full stays set: the first scan looks at every path.
	c.dir, c.dfName, c.ignore, c.scan = sc.Dir, sc.DfName, sc.Ignore, sc.Scan
	c.files, c.chunks = files, chunks
}

// sameKeys reports whether a and b hold the same chunks.
func sameKeys(a, b map[[sha256.Size]byte]*chunk) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
