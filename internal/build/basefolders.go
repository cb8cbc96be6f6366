package build

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/imagearchive"
)

// fsMeta is what an image's file system says of one path that a layer
// may have to restate: its type, mode, owner, modification time and, for
// a symbolic link, its target.
type fsMeta struct {
	Type    byte      `json:"t"`
	Mode    int64     `json:"m"` // permission bits with setuid, setgid, sticky (07777)
	UID     int       `json:"u,omitempty"`
	GID     int       `json:"g,omitempty"`
	ModTime time.Time `json:"mt"`
	Link    string    `json:"l,omitempty"`
}

func metaOf(h *tar.Header) fsMeta {
	return fsMeta{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.UTC(), Link: h.Linkname}
}

// folderHeader is the tar header restating folder name (no leading or
// trailing slash) as m describes it.
func folderHeader(name string, m fsMeta) *tar.Header {
	mt := m.ModTime
	if mt.IsZero() {
		mt = epoch
	}
	return &tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: m.Mode, Uid: m.UID, Gid: m.GID, ModTime: mt, Format: tar.FormatPAX}
}

// newFolder is a folder no layer below has: made 0755, owned by root, as
// the engine's builder makes the folders a COPY or WORKDIR needs.
var newFolder = fsMeta{Type: tar.TypeDir, Mode: 0o755}

// folders answers what a layer of devenv's own writes for a folder it
// needs (above a COPY's files, or a WORKDIR): the folder as the image has
// it so far, so that the entry changes nothing of it (overlay2 unpacks a
// layer into an empty folder and makes a missing parent 0755 root, which
// then hides the one below: /tmp would lose its 1777). devenv's earlier
// layers have the last word, then the base image's file system.
type folders struct {
	made map[string]fsMeta // devenv's own layers so far, by path (see record)
	// base returns the base image's folders, symbolic links and files
	// (see readBaseFolders); nil for FROM scratch.
	base func(context.Context) (map[string]fsMeta, error)
}

// header is the entry for folder p (no leading or trailing slash). A
// symbolic link or a file where the folder would be is left to the
// engine's builder (errNotSimple): it follows the link, or says why not.
func (f *folders) header(ctx context.Context, p string) (*tar.Header, error) {
	m, ok := f.made[p]
	if !ok && f.base != nil {
		base, err := f.base(ctx)
		if err != nil {
			return nil, err
		}
		m, ok = base[p]
		// The base's files are listed too (for LiveDiff); a folder
		// written over one is new, as it was before they were listed.
		ok = ok && (m.Type == tar.TypeDir || m.Type == tar.TypeSymlink)
	}
	switch {
	case !ok:
		return folderHeader(p, newFolder), nil
	case m.Type == tar.TypeDir:
		return folderHeader(p, m), nil
	case m.Type == tar.TypeSymlink:
		return nil, fmt.Errorf("%w: /%s is a symbolic link (to %s)", errNotSimple, p, m.Link)
	default:
		return nil, fmt.Errorf("%w: /%s is not a folder", errNotSimple, p)
	}
}

// layerFolders is what one layer tar says about the file system: the
// paths it writes (each replacing whatever the layers below have there)
// and its whiteouts.
type layerFolders struct {
	entries map[string]fsMeta
	removed []string // .wh.<name>: the path and what it holds
	opaque  []string // .wh..wh..opq: what the folder held below is hidden
}

// Whiteout names of the image layer format (OCI image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// indexFolders reads the headers of a layer tar (uncompressed) into its
// layerFolders, skipping the contents.
func indexFolders(in io.Reader) (*layerFolders, error) {
	lf := &layerFolders{entries: map[string]fsMeta{}}
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return lf, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue // the root itself
		}
		dir, base := path.Dir(name), path.Base(name)
		if dir == "." {
			dir = ""
		}
		switch {
		case base == whiteoutOpaque:
			lf.opaque = append(lf.opaque, dir)
		case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
			// other AUFS metadata (.wh..wh.plnk, ...): not a path
		case strings.HasPrefix(base, whiteoutPrefix):
			lf.removed = append(lf.removed, path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
		default:
			lf.entries[name] = metaOf(h)
		}
	}
}

// applyLayer puts layer l on top of the file system fsys: its whiteouts
// first, then its entries.
func applyLayer(fsys map[string]fsMeta, l *layerFolders) {
	// removeTree removes what p holds, and p itself when self. A path
	// not listed may still hold some (a folder the layers imply without
	// an entry of its own): the whole map is looked through.
	removeTree := func(p string, self bool) {
		if self {
			if m, ok := fsys[p]; ok {
				delete(fsys, p)
				if m.Type != tar.TypeDir {
					return
				}
			}
		}
		prefix := p + "/"
		if p == "" {
			prefix = ""
		}
		for k := range fsys {
			if strings.HasPrefix(k, prefix) {
				delete(fsys, k)
			}
		}
	}
	for _, p := range l.removed {
		removeTree(p, true)
	}
	for _, d := range l.opaque {
		removeTree(d, false)
	}
	for p, m := range l.entries {
		if old, ok := fsys[p]; ok && old.Type == tar.TypeDir && m.Type != tar.TypeDir {
			removeTree(p, false)
		}
		fsys[p] = m
	}
}

// readBaseFolders reads a `docker save` archive of one image (the legacy
// docker-archive, or the OCI image layout Docker 25 and later writes, its
// layers possibly gzip-compressed) and returns the image's file system
// (folders, symbolic links and files: what a path is, not what a file
// holds), upper layers winning and whiteouts removing, by path (no
// leading or trailing slash). Only tar headers are read; the contents
// pass by.
func readBaseFolders(r io.Reader) (map[string]fsMeta, error) {
	layers := map[string]*layerFolders{}
	failed := map[string]error{}
	a, err := imagearchive.Read(r, func(e *imagearchive.Entry) error {
		// Any file may be a layer: it is known to be one only once the
		// archive's manifest names it, and a failure matters only then.
		lf, err := indexLayer(e)
		if err != nil {
			failed[e.Name] = err
			return nil
		}
		layers[e.Name] = lf
		return nil
	})
	if err != nil {
		return nil, err
	}
	img, err := a.One()
	if err != nil {
		return nil, err
	}
	fsys := map[string]fsMeta{}
	for _, l := range img.Layers {
		lf, ok := layers[l.Path]
		if !ok {
			return nil, fmt.Errorf("reading layer %s: %w", l.Path, failed[l.Path])
		}
		applyLayer(fsys, lf)
	}
	return fsys, nil
}

// indexLayer reads the folders of the archive entry e, a layer
// uncompressed or gzip.
func indexLayer(e *imagearchive.Entry) (*layerFolders, error) {
	rc, err := e.Tar()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return indexFolders(rc)
}

// saveFolders reads the folders of image id from Docker (`docker save`,
// headers only). An engine that does not give them leaves the image to its
// own builder (errNotSimple).
func saveFolders(ctx context.Context, docker *client.Client, id string) (map[string]fsMeta, error) {
	rc, err := docker.ImageSave(ctx, []string{id})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: saving base image %s to read its folders: %v", errNotSimple, shortDigest(id), err)
	}
	defer rc.Close()
	m, err := readBaseFolders(rc)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: reading the folders of base image %s: %v", errNotSimple, shortDigest(id), err)
	}
	return m, nil
}

// folderCache keeps the folders of a few base images, by image ID, in
// memory and (with a folder) on disk, so that each base image is read
// once: at most one read per ID at a time, a failed one not kept.
type folderCache struct {
	mu    sync.Mutex
	loads map[string]*folderLoad
}

type folderLoad struct {
	done chan struct{}
	m    map[string]fsMeta
	err  error
}

// maxCachedBases is how many base images' folders stay in memory.
const maxCachedBases = 4

// baseFoldersFile is the format of a base image's folders on disk.
type baseFoldersFile struct {
	Version int               `json:"version"`
	ID      string            `json:"id"`
	Folders map[string]fsMeta `json:"folders"`
}

// baseFoldersVersion changes with what readBaseFolders keeps (2: files
// too).
const baseFoldersVersion = 2

// get returns image id's folders: from memory, else from dir (when not
// ""), else from load, which it then keeps in both.
func (c *folderCache) get(ctx context.Context, id, dir string, load func(context.Context) (map[string]fsMeta, error)) (map[string]fsMeta, error) {
	c.mu.Lock()
	if c.loads == nil {
		c.loads = map[string]*folderLoad{}
	}
	l, ok := c.loads[id]
	if !ok {
		for k, old := range c.loads {
			if len(c.loads) < maxCachedBases {
				break
			}
			select {
			case <-old.done:
				delete(c.loads, k)
			default:
			}
		}
		l = &folderLoad{done: make(chan struct{})}
		c.loads[id] = l
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err == nil {
			return l.m, nil
		}
		// The read that failed may have been another caller's cancelled
		// one: read again.
		return c.get(ctx, id, dir, load)
	}
	l.m, l.err = loadFolders(ctx, id, dir, load)
	if l.err != nil {
		c.mu.Lock()
		if c.loads[id] == l {
			delete(c.loads, id)
		}
		c.mu.Unlock()
	}
	close(l.done)
	return l.m, l.err
}

// loadFolders reads image id's folders from dir's file, else through load,
// writing the file (best effort: a cache).
func loadFolders(ctx context.Context, id, dir string, load func(context.Context) (map[string]fsMeta, error)) (map[string]fsMeta, error) {
	file := ""
	if dir != "" {
		file = filepath.Join(dir, strings.TrimPrefix(id, "sha256:")+".json")
		if b, err := os.ReadFile(file); err == nil {
			var f baseFoldersFile
			if json.Unmarshal(b, &f) == nil && f.Version == baseFoldersVersion && f.ID == id && f.Folders != nil {
				return f.Folders, nil
			}
		}
	}
	m, err := load(ctx)
	if err != nil {
		return nil, err
	}
	if file != "" {
		if b, err := json.Marshal(baseFoldersFile{Version: baseFoldersVersion, ID: id, Folders: m}); err == nil {
			if err := os.MkdirAll(dir, 0o700); err == nil {
				_ = writeAtomic(file, b)
			}
		}
	}
	return m, nil
}

// baseFoldersDir is where s keeps the base images' folders on disk; ""
// for a nil State or one without a file.
func (s *State) baseFoldersDir() string {
	if s == nil || s.path == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(s.path), "base-folders")
}

// baseFolders returns the folders of base image id, read from Docker once
// per image and kept by s (a nil s keeps nothing).
func (s *State) baseFolders(ctx context.Context, docker *client.Client, id string) (map[string]fsMeta, error) {
	load := func(ctx context.Context) (map[string]fsMeta, error) { return saveFolders(ctx, docker, id) }
	if s == nil {
		return load(ctx)
	}
	return s.folders.get(ctx, id, s.baseFoldersDir(), load)
}
