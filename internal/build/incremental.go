package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/patternmatcher"
)

// A save rebuilds an assembled image from what changed, not from the whole
// build context: the build keeps, per service and per State (in memory,
// and between processes in State's folder: see SaveContexts), what the
// last scan saw of each context path (mode, size, modification time, link
// target, content hash) and where the last image's COPY layers hold each
// file's bytes.
//
// A scan is either full (every path walked and stat'ed; a file is read
// again only when its size, mode or modification time changed, or that
// time lies within 2 s of the previous scan) or, when the caller passes
// the paths a watcher reported (ImageOptions.Changed), only those paths,
// the folders below them and their parent folders are looked at. What the
// guarantees are:
//
//   - a reported path is always read again, even when its size and
//     modification time did not change (editors that keep the time);
//   - a path that changed but was not reported (a missed event, a file the
//     watcher ignores such as a .gitignore'd one, a chmod, which the
//     watcher does not report) is not seen by an incremental build; the
//     next full scan sees it, at the latest the first build of a new
//     process (devenv up), which always scans in full (the entries a new
//     process takes from State's folder, see SaveContexts, keep their
//     hashes only where the stat is unchanged, as the fingerprint does);
//   - a full scan and an incremental one that see the same files give the
//     same image, byte for byte (the same layers, the same image ID) and
//     the same ContextDigest.
//
// A COPY layer is written from its entries: a file whose content the last
// image's layers hold is copied from that layer's file, any other is read
// from the context, and the layer's digest is computed while it is
// written. A COPY of many entries (more than chunkMin) is cut into several
// layers at entries chosen by a hash of their names, each layer restating
// the folders above its first entry: a change then rewrites one of them,
// and the cold build cuts the same contents at the same places.

// ctxFile is one path of a build context as the last scan saw it.
type ctxFile struct {
	mode   fs.FileMode
	size   int64
	mtime  time.Time
	link   string
	sum    [sha256.Size]byte // content of a regular file, when hashed
	hashed bool
	// fp is the file's line in the fingerprint, once made.
	fp []byte
}

// sameStat reports whether f and o look alike without reading content.
func (f *ctxFile) sameStat(o *ctxFile) bool {
	return f.mode == o.mode && f.size == o.size && f.mtime.Equal(o.mtime) && f.link == o.link
}

// contextCache is what the last build of one service saw (see above).
type contextCache struct {
	mu sync.Mutex // one build of the service at a time

	full   bool   // the next scan walks everything
	dir    string // the context the entries are of
	dfName string
	ignore string // the .dockerignore's bytes the entries were filtered with
	files  map[string]*ctxFile
	order  []string  // files' paths in walk order; nil when to be sorted
	scan   time.Time // when the last scan started
	pm     *patternmatcher.PatternMatcher

	// chunks are the COPY layers of the last image, by chunkKey.
	chunks map[[sha256.Size]byte]*chunk
	// chunkMin is how many entries a COPY layer holds before it is cut
	// (chunkMin; tests make it smaller).
	chunkMin int

	// walked, when set, is a walk of the context the next full scan
	// takes instead of walking (see contextWalk); a scan clears it.
	walked *contextWalk

	// memo is the last assembly's COPY layers (see assembleMemo); touched
	// are the paths the scans since then replaced, and reshaped is set
	// when they saw more than files' contents change (or scanned in full).
	memo     *assembleMemo
	touched  map[string]bool
	reshaped bool
	patches  int // assemblies made from the memo (for tests)
	written  int // layers written (for tests)

	// gen counts the changes scans and assemblies made; savedGen is the
	// gen State's file holds (see SaveContexts).
	gen, savedGen uint64
}

// contextWalk is a walk of a service's context that the prebuild's check
// made together with the walk of its inputs (one walk for both: see
// Prebuild), kept in State for the image build that follows. A full scan
// takes it as its own when it is of the same context, Dockerfile name
// and .dockerignore bytes and not older than walkKept: the scan is then
// as of the walk's start, and so is the racy window of the next scan.
type contextWalk struct {
	dir, dfName, ignore string
	ents                []treeEntry
	at                  time.Time // when the walk started
}

// walkKept is how long a prebuild check's walk stands for the context.
const walkKept = 10 * time.Second

// keepWalk keeps w for service's next full scan.
func (s *State) keepWalk(service string, w *contextWalk) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.walks == nil {
		s.walks = map[string]*contextWalk{}
	}
	s.walks[service] = w
}

// takeWalk returns the walk kept for service, once.
func (s *State) takeWalk(service string) *contextWalk {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.walks[service]
	delete(s.walks, service)
	return w
}

// chunk is one COPY layer and where it holds each content.
type chunk struct {
	layer Layer
	at    map[[sha256.Size]byte]int64 // content hash -> offset of the bytes in the layer
}

// contextCache returns the cache of service's context: State's, or a new
// one with a nil State.
func (s *State) contextCache(service string) *contextCache {
	if s == nil {
		return &contextCache{full: true, chunkMin: chunkMin}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.contexts == nil {
		s.contexts = map[string]*contextCache{}
	}
	c := s.contexts[service]
	if c == nil {
		c = &contextCache{full: true, chunkMin: cmp.Or(s.chunkMin, chunkMin)}
		c.load(s.contextFile(service), s.LayerDir())
		s.contexts[service] = c
	}
	return c
}

// update brings the entries up to date with spec's context: a full scan,
// or one of the changed paths (relative, slash-separated) when they are
// known and nothing forces a full one.
func (c *contextCache) update(spec Spec, dfName string, changed []string) error {
	ignore, err := os.ReadFile(filepath.Join(spec.Context, ".dockerignore"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("service %q: reading .dockerignore: %w", spec.Service, err)
	}
	other := c.dir != spec.Context || c.dfName != dfName || c.ignore != string(ignore)
	full := c.full || changed == nil || other
	if other {
		c.gen++
	}
	if c.dir != spec.Context {
		c.files, c.order = nil, nil // of another folder: no hash stands
	}
	for _, p := range changed {
		if p == ".dockerignore" || !filepath.IsLocal(p) {
			full = true
		}
	}
	// Until this scan ends well, the next one is a full one.
	c.full, c.dir, c.dfName, c.ignore = true, spec.Context, dfName, string(ignore)
	start := time.Now()
	walked := c.walked
	c.walked = nil
	if walked != nil && (walked.dir != spec.Context || walked.dfName != dfName || walked.ignore != string(ignore) || start.Sub(walked.at) > walkKept) {
		walked = nil
	}
	if full {
		c.reshaped = true
		if walked != nil {
			start = walked.at
		}
		err = c.fullScan(spec, dfName, changed, walked)
	} else {
		if len(changed) > 0 {
			c.gen++
		}
		err = c.partialScan(spec, dfName, changed)
	}
	if err != nil {
		return err
	}
	if c.order == nil {
		c.order = slices.SortedFunc(maps.Keys(c.files), walkCompare)
	}
	c.scan, c.full = start, false
	return nil
}

// entry makes the entry of path p from fi, keeping old's content hash when
// the file looks unchanged, was not reported (forced) and was not written
// within racyWindow of the previous scan.
func (c *contextCache) entry(p string, fi fs.FileInfo, old *ctxFile, forced bool) (*ctxFile, error) {
	f := &ctxFile{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
	if f.mode&fs.ModeSymlink != 0 {
		link, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		f.link = link
	}
	c.keepSum(f, old, forced)
	return f, nil
}

// keepSum gives f old's content hash when f looks unchanged, was not
// reported (forced) and was not written within racyWindow of the
// previous scan.
func (c *contextCache) keepSum(f, old *ctxFile, forced bool) {
	racy := !c.scan.IsZero() && f.mtime.After(c.scan.Add(-racyWindow))
	if f.mode.IsRegular() && old != nil && old.hashed && !forced && !racy && f.sameStat(old) {
		f.sum, f.hashed = old.sum, true
	}
}

// fullScan walks the whole context, or takes walked's entries (nil: walk).
func (c *contextCache) fullScan(spec Spec, dfName string, changed []string, walked *contextWalk) error {
	forced := make(map[string]bool, len(changed))
	for _, p := range changed {
		forced[p] = true
	}
	old := c.files
	files := make(map[string]*ctxFile, len(old))
	order := make([]string, 0, len(old))
	pm, err := dockerignore(spec.Context)
	if err != nil {
		return fmt.Errorf("service %q: %w", spec.Service, err)
	}
	var ents []treeEntry
	if walked != nil {
		ents = walked.ents
	} else if ents, err = contextEntries(spec, dfName, pm); err != nil {
		return err
	}
	// One allocation for the entries rather than one each.
	store := make([]ctxFile, len(ents))
	for i, t := range ents {
		if t.rel == dfName {
			continue // its bytes come from dockerfileOf
		}
		f := &store[i]
		f.mode, f.size, f.mtime, f.link = t.mode, t.size, t.mtime, t.link
		o := old[t.rel]
		c.keepSum(f, o, forced[t.rel])
		if o == nil || !f.sameStat(o) || f.hashed != o.hashed {
			c.gen++
		}
		files[t.rel] = f
		order = append(order, t.rel)
	}
	if len(files) != len(old) {
		c.gen++
	}
	c.files, c.order, c.pm = files, order, pm
	return nil
}

// partialScan looks again at the changed paths only: each one, what lies
// below it and the folders above it.
func (c *contextCache) partialScan(spec Spec, dfName string, changed []string) error {
	changed = slices.Clone(changed)
	slices.Sort(changed)
	changed = slices.Compact(changed)
	old := map[string]*ctxFile{}
	// Forget what lay at and below each changed path; the order stays
	// when the same paths come back.
	below := map[string]bool{}
	added := false
	defer func() {
		for rel := range old {
			if _, ok := c.files[rel]; !ok {
				added = true // removed
				c.reshaped = true
			}
		}
		if added {
			c.order = nil
		}
	}()
	for _, rel := range changed {
		if f, ok := c.files[rel]; ok {
			old[rel] = f
			delete(c.files, rel)
			if !f.mode.IsDir() {
				continue
			}
		}
		below[rel] = true
	}
	if len(below) > 0 {
		for rel, f := range c.files {
			for d := path.Dir(rel); d != "."; d = path.Dir(d) {
				if below[d] {
					old[rel] = f
					delete(c.files, rel)
					break
				}
			}
		}
	}
	add := func(p, rel string, fi fs.FileInfo, forced bool) error {
		f, err := c.entry(p, fi, old[rel], forced)
		if err != nil {
			return err
		}
		prev, ok := c.files[rel]
		if !ok && old[rel] == nil {
			added = true
		}
		if !ok {
			prev = old[rel]
		}
		if prev == nil || prev.mode != f.mode || prev.link != f.link {
			c.reshaped = true // new, or of another kind or mode
		}
		c.touch(rel)
		c.files[rel] = f
		return nil
	}
	abs := func(rel string) string { return filepath.Join(spec.Context, filepath.FromSlash(rel)) }
	for _, rel := range changed {
		if rel == dfName {
			continue
		}
		fi, err := os.Lstat(abs(rel))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed, with what it held
		}
		if err != nil {
			return fmt.Errorf("service %q: %w", spec.Service, err)
		}
		// The folders above it, when new.
		var dirs []string
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
		for _, d := range slices.Backward(dirs) {
			if _, ok := c.files[d]; ok {
				continue
			}
			send, _, err := sendable(c.pm, dfName, d)
			if err != nil {
				return fmt.Errorf("service %q: .dockerignore: %w", spec.Service, err)
			}
			if !send {
				continue
			}
			dfi, err := os.Lstat(abs(d))
			if err != nil {
				return fmt.Errorf("service %q: %w", spec.Service, err)
			}
			if err := add(abs(d), d, dfi, false); err != nil {
				return err
			}
		}
		if !fi.IsDir() {
			send, _, err := sendable(c.pm, dfName, rel)
			if err != nil {
				return fmt.Errorf("service %q: .dockerignore: %w", spec.Service, err)
			}
			if send {
				if err := add(abs(rel), rel, fi, true); err != nil {
					return err
				}
			}
			continue
		}
		err = filepath.WalkDir(abs(rel), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, err := filepath.Rel(spec.Context, p)
			if err != nil {
				return err
			}
			r = filepath.ToSlash(r)
			send, descend, err := sendable(c.pm, dfName, r)
			if err != nil {
				return fmt.Errorf(".dockerignore: %w", err)
			}
			if !send || r == dfName {
				if d.IsDir() && !descend {
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return add(p, r, fi, r == rel)
		})
		if err != nil {
			return fmt.Errorf("service %q: reading build context %s: %w", spec.Service, spec.Context, err)
		}
	}
	// A folder's size and time change with what it holds.
	for _, rel := range changed {
		d := path.Dir(rel)
		if _, ok := c.files[d]; ok && d != "." {
			fi, err := os.Lstat(abs(d))
			if err != nil {
				return fmt.Errorf("service %q: %w", spec.Service, err)
			}
			if err := add(abs(d), d, fi, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkCompare orders slash-separated paths as filepath.WalkDir visits
// them: name by name, a folder before what it holds.
func walkCompare(a, b string) int {
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ac, bc := a, b
		if ai >= 0 {
			ac = a[:ai]
		}
		if bi >= 0 {
			bc = b[:bi]
		}
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		if ai < 0 || bi < 0 {
			return cmp.Compare(len(a), len(b))
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// ctxFiles returns what COPY sees of the context, as contextFiles reads it
// from the context's tar: the entries the scan keeps, with the tar's
// headers, plus the Dockerfile (dfBytes) and the .dockerignore unless the
// .dockerignore excludes them.
func (c *contextCache) ctxFiles(spec Spec, dfBytes []byte) (map[string]ctxEntry, error) {
	files := make(map[string]ctxEntry, len(c.files)+1)
	hidden := func(name string) bool {
		if c.pm == nil {
			return false
		}
		ex, _ := c.pm.MatchesOrParentMatches(name)
		return ex
	}
	for rel, f := range c.files {
		var h *tar.Header
		switch {
		case f.mode.IsDir():
			h = header(rel+"/", f.mode)
			h.Typeflag = tar.TypeDir
		case f.mode&fs.ModeSymlink != 0:
			h = header(rel, 0o777)
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		case f.mode.IsRegular():
			h = header(rel, f.mode)
			h.Typeflag, h.Size = tar.TypeReg, f.size
		default:
			continue // not part of a build context
		}
		if rel == ".dockerignore" && hidden(rel) {
			continue
		}
		e := ctxEntry{hdr: h}
		if h.Typeflag == tar.TypeReg {
			e.src, e.file, e.rel = filepath.Join(spec.Context, filepath.FromSlash(rel)), f, rel
		}
		files[rel] = e
	}
	if !hidden(c.dfName) {
		files[c.dfName] = ctxEntry{hdr: &tar.Header{Name: c.dfName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(dfBytes)), ModTime: epoch, Format: tar.FormatPAX}, data: dfBytes}
	}
	return files, nil
}

// chunkMin is how many entries a COPY layer holds at most before it is
// cut into several.
const chunkMin = 4096

// chunkCount is about how many layers a big COPY is cut into.
const chunkCount = 16

// cut returns where the sorted names are cut into layers of about min
// entries or more: the end of each part. A name ends a part when a hash of
// it is a multiple of a stride that depends on the number of entries
// only, so that a change moves the cuts near it only.
func cut(names []string, min int) []int {
	if len(names) <= min {
		return []int{len(names)}
	}
	stride := uint32(min / 4)
	for int(stride)*chunkCount < len(names) {
		stride *= 2
	}
	var ends []int
	for i, n := range names[:len(names)-1] {
		h := fnv.New32a()
		h.Write([]byte(n))
		if h.Sum32()%stride == 0 {
			ends = append(ends, i+1)
		}
	}
	return append(ends, len(names))
}

// copyLayers writes the layers of one COPY's entries (by target path,
// without leading slash), reusing the last image's layers and bytes (see
// above). dir is the layer folder ("" keeps the layers in memory). next
// collects the chunks of the image being built. It returns the layers'
// entries and chunk keys too.
func (c *contextCache) copyLayers(out map[string]ctxEntry, dir string, next map[[sha256.Size]byte]*chunk) ([]Layer, copyMemo, error) {
	m := copyMemo{parts: c.cutParts(out)}
	ls, keys, err := c.layersOf(m.parts, nil, nil, dir, next)
	m.keys = keys
	return ls, m, err
}

// layersOf writes (or takes from the last image) the layer of each part.
// keys, when not nil, are the parts' chunk keys as they were, good for
// each part whose dirty is false.
func (c *contextCache) layersOf(parts [][]ctxEntry, keys [][sha256.Size]byte, dirty []bool, dir string, next map[[sha256.Size]byte]*chunk) ([]Layer, [][sha256.Size]byte, error) {
	layers := make([]Layer, 0, len(parts))
	made := make([][sha256.Size]byte, 0, len(parts))
	for i, part := range parts {
		var key [sha256.Size]byte
		known := false
		if keys != nil && !dirty[i] {
			key, known = keys[i], true
		} else {
			key, known = chunkKey(part)
		}
		ch, err := c.chunkOf(part, key, known, dir, next)
		if err != nil {
			return nil, nil, err
		}
		if !known {
			key, _ = chunkKey(part) // every content is hashed now
		}
		next[key] = ch
		layers = append(layers, ch.layer)
		made = append(made, key)
	}
	return layers, made, nil
}

// chunkKey identifies a layer by its entries' headers and contents; ok is
// false while some content is not hashed yet.
func chunkKey(part []ctxEntry) (key [sha256.Size]byte, ok bool) {
	h := sha256.New()
	var b []byte
	for _, e := range part {
		hd := e.hdr
		b = append(b[:0], hd.Name...)
		b = append(b, 0, hd.Typeflag)
		b = append(b, hd.Linkname...)
		b = append(b, 0)
		b = append(b, hd.Uname...)
		b = append(b, 0)
		b = append(b, hd.Gname...)
		b = append(b, 0)
		for _, v := range []int64{hd.Mode, int64(hd.Uid), int64(hd.Gid), hd.Size, hd.ModTime.UnixNano(), int64(hd.Format), hd.Devmajor, hd.Devminor, int64(len(hd.PAXRecords))} {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		for _, k := range slices.Sorted(maps.Keys(hd.PAXRecords)) {
			b = append(append(append(b, k...), 0), hd.PAXRecords[k]...)
			b = append(b, 0)
		}
		if hd.Typeflag == tar.TypeReg {
			switch {
			case e.data != nil:
				s := sha256.Sum256(e.data)
				b = append(b, s[:]...)
			case e.file != nil && e.file.hashed:
				b = append(b, e.file.sum[:]...)
			default:
				return key, false
			}
		}
		h.Write(b)
	}
	h.Sum(key[:0])
	return key, true
}

// chunkOf returns the layer of part (key, when known, is its chunkKey):
// the last image's when it had the same one (and its file is still
// there), else one written now.
func (c *contextCache) chunkOf(part []ctxEntry, key [sha256.Size]byte, known bool, dir string, next map[[sha256.Size]byte]*chunk) (*chunk, error) {
	if known {
		ch, ok := c.chunks[key]
		if !ok {
			ch, ok = next[key] // an earlier attempt at the same image
		}
		if ok {
			if ch.layer.Path == "" {
				return ch, nil
			}
			if fi, err := os.Stat(ch.layer.Path); err == nil && fi.Size() == ch.layer.Size {
				now := time.Now() // in use again: not for PruneLayers
				_ = os.Chtimes(ch.layer.Path, now, now)
				return ch, nil
			}
		}
	}
	return c.writeChunk(part, dir)
}

// countWriter counts what goes through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (w *countWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.n += int64(n)
	return n, err
}

// writeChunk writes part as a layer, to a file in dir (or memory when dir
// is ""), hashing it as it goes.
func (c *contextCache) writeChunk(part []ctxEntry, dir string) (ch *chunk, err error) {
	c.written++
	var dst io.Writer
	var buf *bytesBuffer
	var tmp *os.File
	var bw *bufio.Writer
	if dir == "" {
		buf = &bytesBuffer{}
		dst = buf
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating the layer folder: %w", err)
		}
		if tmp, err = os.CreateTemp(dir, ".layer-*"); err != nil {
			return nil, fmt.Errorf("storing a layer: %w", err)
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		// As big as the layer, up to 1 MB: a save of a small file writes
		// a small layer, without a megabyte of garbage.
		est := int64(1024) // the tar's end
		for _, e := range part {
			est += 512 + (e.hdr.Size+511)/512*512
		}
		bw = bufio.NewWriterSize(tmp, int(min(1<<20, max(4096, est))))
		dst = bw
	}
	digest := sha256.New()
	cw := &countWriter{w: io.MultiWriter(dst, digest)}
	tw := tar.NewWriter(cw)
	ch = &chunk{at: map[[sha256.Size]byte]int64{}}
	sources := map[string]io.ReaderAt{}
	defer func() {
		for _, f := range sources {
			if c, ok := f.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	var files []FileSum
	for _, e := range part {
		if err := tw.WriteHeader(e.hdr); err != nil {
			return nil, err
		}
		fsum := FileSum{Name: strings.Trim(e.hdr.Name, "/"), Typeflag: e.hdr.Typeflag, Mode: e.hdr.Mode, Uid: e.hdr.Uid, Gid: e.hdr.Gid, Linkname: e.hdr.Linkname}
		if e.hdr.Typeflag == tar.TypeReg {
			off := cw.n
			sum, err := c.writeContent(tw, e, sources)
			if err != nil {
				return nil, err
			}
			fsum.Size, fsum.Sum = e.hdr.Size, sum
			ch.at[sum] = off
		}
		files = append(files, fsum)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	ch.layer = Layer{DiffID: "sha256:" + hex.EncodeToString(digest.Sum(nil)), Size: cw.n, Files: files}
	if dir == "" {
		ch.layer.Data = buf.b
		return ch, nil
	}
	p := layerPath(dir, ch.layer.DiffID)
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("storing layer %s: %w", shortDigest(ch.layer.DiffID), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("storing layer %s: %w", shortDigest(ch.layer.DiffID), err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return nil, fmt.Errorf("storing layer %s: %w", shortDigest(ch.layer.DiffID), err)
	}
	tmp = nil
	ch.layer.Path = p
	return ch, nil
}

// writeContent writes entry e's content to tw: from memory, from a layer
// of the last image that holds it, or from the context (hashed on the
// way, which is then the file's content hash). It returns the hash.
func (c *contextCache) writeContent(tw *tar.Writer, e ctxEntry, sources map[string]io.ReaderAt) ([sha256.Size]byte, error) {
	if e.data != nil {
		_, err := tw.Write(e.data)
		return sha256.Sum256(e.data), err
	}
	f := e.file
	if f.hashed {
		for _, ch := range c.chunks {
			off, ok := ch.at[f.sum]
			if !ok {
				continue
			}
			if ch.layer.Data != nil {
				if _, err := tw.Write(ch.layer.Data[off : off+e.hdr.Size]); err != nil {
					return f.sum, err
				}
				return f.sum, nil
			}
			src := sources[ch.layer.Path]
			if src == nil {
				// A small layer is read whole: many small files.
				if ch.layer.Size <= 64<<20 {
					b, err := os.ReadFile(ch.layer.Path)
					if err != nil || int64(len(b)) != ch.layer.Size {
						continue // pruned: read the context's file
					}
					src = bytes.NewReader(b)
				} else {
					f, err := os.Open(ch.layer.Path)
					if err != nil {
						continue
					}
					src = f
				}
				sources[ch.layer.Path] = src
			}
			if _, err := io.Copy(tw, io.NewSectionReader(src, off, e.hdr.Size)); err != nil {
				return f.sum, fmt.Errorf("copying %s from layer %s: %w", e.hdr.Name, shortDigest(ch.layer.DiffID), err)
			}
			return f.sum, nil
		}
	}
	r, err := os.Open(e.src)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.CopyN(tw, io.TeeReader(r, h), e.hdr.Size); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("%s: %w", e.hdr.Name, shortRead(err))
	}
	h.Sum(f.sum[:0])
	f.hashed = true
	return f.sum, nil
}

// bytesBuffer is a growing byte slice writer.
type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// digest hashes the context's regular files that no layer read, then
// returns the context's digest: over the Dockerfile's bytes and each
// path the build sends, in walk order, with its type, permissions, size
// and content hash (a link's target). The same files give the same digest
// whatever the scan; contextDigestOfTar computes it from a context's tar.
// (Before, the digest was the tar's own hash: every image's digest
// changed once with this.)
func (c *contextCache) digest(spec Spec, dfBytes []byte) (string, error) {
	d := newContextDigest(c.dfName, dfBytes)
	for _, rel := range c.order {
		f := c.files[rel]
		switch {
		case f.mode.IsDir():
			d.add(rel, tar.TypeDir, int64(f.mode.Perm()), 0, [sha256.Size]byte{})
		case f.mode&fs.ModeSymlink != 0:
			d.add(rel, tar.TypeSymlink, 0, 0, sha256.Sum256([]byte(f.link)))
		case f.mode.IsRegular():
			if !f.hashed {
				sum, err := hashFile(filepath.Join(spec.Context, filepath.FromSlash(rel)))
				if err != nil {
					return "", fmt.Errorf("service %q: %w", spec.Service, err)
				}
				f.sum, f.hashed = sum, true
			}
			d.add(rel, tar.TypeReg, int64(f.mode.Perm()), f.size, f.sum)
		}
	}
	return d.sum(), nil
}

// contextDigest is the digest of a build context (see contextCache.digest).
type contextDigest struct {
	h    io.Writer
	sumf func() []byte
	line []byte
}

func newContextDigest(dfName string, dfBytes []byte) *contextDigest {
	h := sha256.New()
	fmt.Fprintf(h, "dockerfile %q %x\n", dfName, sha256.Sum256(dfBytes))
	return &contextDigest{h: h, sumf: func() []byte { return h.Sum(nil) }}
}

func (d *contextDigest) add(rel string, typ byte, perm, size int64, sum [sha256.Size]byte) {
	// rel, NUL, type, permissions, size, hash: no path holds a NUL.
	d.line = append(append(d.line[:0], rel...), 0, typ)
	d.line = binary.LittleEndian.AppendUint32(d.line, uint32(perm))
	d.line = binary.LittleEndian.AppendUint64(d.line, uint64(size))
	d.h.Write(append(d.line, sum[:]...))
}

func (d *contextDigest) sum() string { return "sha256:" + hex.EncodeToString(d.sumf()) }

// contextDigestOfTar is contextCache.digest of a context's tar as
// buildContext makes it (for images the engine builds).
func contextDigestOfTar(data []byte, dfName string) (string, error) {
	type ent struct {
		rel        string
		typ        byte
		perm, size int64
		sum        [sha256.Size]byte
	}
	var ents []ent
	var dfBytes []byte
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		rel := strings.TrimSuffix(h.Name, "/")
		if rel == dfName {
			if dfBytes, err = io.ReadAll(tr); err != nil {
				return "", err
			}
			continue
		}
		e := ent{rel: rel, typ: h.Typeflag}
		switch h.Typeflag {
		case tar.TypeDir:
			e.perm = h.Mode
		case tar.TypeSymlink:
			e.sum = sha256.Sum256([]byte(h.Linkname))
		case tar.TypeReg:
			// Hashed as it streams: a copy of each file in memory (and
			// io.ReadAll's growing ones) is not needed for its sum.
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				return "", err
			}
			e.perm, e.size = h.Mode, h.Size
			sum.Sum(e.sum[:0])
		}
		ents = append(ents, e)
	}
	slices.SortFunc(ents, func(a, b ent) int { return walkCompare(a.rel, b.rel) })
	d := newContextDigest(dfName, dfBytes)
	for _, e := range ents {
		d.add(e.rel, e.typ, e.perm, e.size, e.sum)
	}
	return d.sum(), nil
}

// hashFile is the sha256 of file p's bytes.
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

// racyWindow is how close to a scan a file's modification time may be
// before its size and time no longer vouch for its content: a file
// rewritten with the same size within the file system's time granularity
// keeps both.
const racyWindow = 2 * time.Second

// ErrChangedWhileRead means a file of the context held fewer bytes than it
// had a moment before, when it was looked at: it is being written (an
// editor truncates, then writes). Image reads the context again a few
// times before it returns it; the watcher reports the write too.
var ErrChangedWhileRead = errors.New("the file changed while it was read")

// shortRead turns the end of a file that came too early into
// ErrChangedWhileRead.
func shortRead(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", ErrChangedWhileRead, err)
	}
	return err
}
