package build

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
)

// Changes is what turns a running container of one assembled image into
// one holding the files of another: files to write and paths to remove.
type Changes struct {
	// Tar holds the files and folders to write, parents first, as in the
	// new image's layers (owner, mode, content).
	Tar []byte
	// Files names what Tar holds; Removed the paths (absolute) to remove
	// first. A removed folder is removed with what it holds. No path is
	// in both, and none that the base image has is removed: a folder of
	// the base that the new image's own layers no longer write is in
	// Files instead, as the base has it (mode, owner, time).
	Files, Removed []string
}

// Empty reports whether there is nothing to change.
func (c Changes) Empty() bool { return len(c.Files) == 0 && len(c.Removed) == 0 }

// LiveDiff returns the Changes that make a container running image from
// hold the files of image to, when the two differ only in the files devenv
// added to the base (COPY, WORKDIR) and both run under the supervisor.
// Otherwise it returns an error saying what else differs: the image must
// then replace the container.
func LiveDiff(from, to *Assembled) (Changes, error) {
	return liveDiff(from, to, true)
}

// liveDiff is LiveDiff; narrow lets it look only at the paths of the
// layers that differ (see changedFileMaps).
func liveDiff(from, to *Assembled, narrow bool) (Changes, error) {
	if !from.Live || !to.Live {
		return Changes{}, fmt.Errorf("the image does not run under devenv's supervisor")
	}
	var fc, tc imageConfig
	if err := json.Unmarshal(from.Config, &fc); err != nil {
		return Changes{}, err
	}
	if err := json.Unmarshal(to.Config, &tc); err != nil {
		return Changes{}, err
	}
	fc.RootFS.DiffIDs, tc.RootFS.DiffIDs = nil, nil
	a, _ := json.Marshal(fc)
	b, _ := json.Marshal(tc)
	if !bytes.Equal(a, b) {
		return Changes{}, fmt.Errorf("the image's settings changed (ENV, USER, ENTRYPOINT, …), not only its files")
	}
	if !slices.Equal(baseLayers(from), baseLayers(to)) {
		return Changes{}, fmt.Errorf("the base image changed")
	}
	var old, cur map[string]fileEntry
	var err error
	ok := false
	if narrow {
		if old, cur, ok, err = changedFileMaps(from, to); err != nil {
			return Changes{}, err
		}
	}
	if !ok {
		if old, err = fileMap(from, nil); err != nil {
			return Changes{}, err
		}
		if cur, err = fileMap(to, nil); err != nil {
			return Changes{}, err
		}
	}
	// What from's layers wrote and to's do not goes back to what the
	// base image has there: removed where the base has nothing, restated
	// where it has a folder. Anything else of the base (a file, a link)
	// cannot be written back from to's layers.
	base := to.baseFiles
	if base == nil {
		base = from.baseFiles // the same base (checked above)
	}
	if len(baseLayers(to)) == 0 {
		base = map[string]fsMeta{}
	}
	var ch Changes
	gone := map[string]bool{}
	restore := map[string]*tar.Header{}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cur[name]; ok {
			continue
		}
		if gone[path.Dir(name)] {
			gone[name] = true // its folder goes
			continue
		}
		if base == nil {
			return Changes{}, fmt.Errorf("/%s goes, and what the base image holds is not known", name)
		}
		m, ok := base[name]
		switch {
		case !ok:
			gone[name] = true
			ch.Removed = append(ch.Removed, "/"+name)
		case m.Type == tar.TypeDir && old[name].sum.Typeflag == tar.TypeDir:
			restore[name] = folderHeader(name, m)
			ch.Files = append(ch.Files, "/"+name)
		default:
			return Changes{}, fmt.Errorf("/%s goes back to the base image's, which only a new container has", name)
		}
	}
	// What to write, by the layer of to that holds it (its last word).
	want := map[int]map[string]bool{}
	for name, e := range cur {
		if o, ok := old[name]; ok && o.sum.same(e.sum) {
			continue
		}
		if want[e.layer] == nil {
			want[e.layer] = map[string]bool{}
		}
		want[e.layer][name] = true
		ch.Files = append(ch.Files, "/"+name)
	}
	if len(ch.Files) == 0 {
		return ch, nil
	}
	slices.Sort(ch.Files)
	entries, err := readEntries(to, want)
	if err != nil {
		return Changes{}, err
	}
	var buf bytes.Buffer
	size := 1024 // the end marker
	for _, e := range entries {
		size += 1024 + len(e.data) // a header (2 blocks with a long name), the data and its padding
	}
	buf.Grow(size + 1024*len(restore))
	tw := tar.NewWriter(&buf)
	for _, f := range ch.Files {
		e, ok := entries[strings.TrimPrefix(f, "/")]
		if !ok {
			e = ctxEntry{hdr: restore[strings.TrimPrefix(f, "/")]}
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return Changes{}, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return Changes{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Changes{}, err
	}
	ch.Tar = buf.Bytes()
	return ch, nil
}

// baseLayers are the layers that came from the base image.
func baseLayers(a *Assembled) []string {
	var ids []string
	for _, l := range a.Layers {
		if l.base() {
			ids = append(ids, l.DiffID)
		}
	}
	return ids
}

// fileEntry is a file of an image's own layers: its index entry and the
// layer it is in.
type fileEntry struct {
	sum   *FileSum
	layer int
}

// fileMap indexes the image's own layers (the base's excluded) by path
// (no leading or trailing slash), later layers winning, without holding
// any file's content; only the paths in only, unless it is nil.
func fileMap(a *Assembled, only map[string]bool) (map[string]fileEntry, error) {
	files := make(map[string]fileEntry, len(only))
	for i := range a.Layers {
		l := &a.Layers[i]
		if l.base() {
			continue
		}
		idx, err := l.index()
		if err != nil {
			return nil, err
		}
		for j := range idx {
			if only == nil || only[idx[j].Name] {
				files[idx[j].Name] = fileEntry{sum: &idx[j], layer: i}
			}
		}
	}
	return files, nil
}

// changedFileMaps is fileMap of both images narrowed to the paths that
// the layers where they differ hold: when the two have as many layers, a
// path that no differing layer of either holds is in the same layer of
// both, the same there, so it needs no look (a save that changes one
// file of 50,000, cut into layers by a COPY, indexes one layer's paths
// instead of all). ok is false when the layers do not line up; the
// caller then indexes them all.
func changedFileMaps(from, to *Assembled) (old, cur map[string]fileEntry, ok bool, err error) {
	if len(from.Layers) != len(to.Layers) {
		return nil, nil, false, nil
	}
	names := map[string]bool{}
	for i := range from.Layers {
		f, t := &from.Layers[i], &to.Layers[i]
		if f.base() != t.base() {
			return nil, nil, false, nil
		}
		if f.base() || f.DiffID == t.DiffID {
			continue
		}
		for _, l := range []*Layer{f, t} {
			idx, err := l.index()
			if err != nil {
				return nil, nil, false, err
			}
			for j := range idx {
				names[idx[j].Name] = true
			}
		}
	}
	if old, err = fileMap(from, names); err != nil {
		return nil, nil, false, err
	}
	if cur, err = fileMap(to, names); err != nil {
		return nil, nil, false, err
	}
	return old, cur, true, nil
}

// readEntries reads, from a's layers, the entries named in want (layer
// index -> names), headers and contents.
func readEntries(a *Assembled, want map[int]map[string]bool) (map[string]ctxEntry, error) {
	out := map[string]ctxEntry{}
	for i, names := range want {
		l := &a.Layers[i]
		r, err := l.open()
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer r.Close()
			tr := tar.NewReader(r)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				name := strings.Trim(h.Name, "/")
				if !names[name] {
					continue
				}
				var data []byte
				if h.Typeflag == tar.TypeReg {
					// One allocation of the file's size (io.ReadAll's
					// growing copies fault in several times as many new
					// pages: 0.1-0.3 s for a 10 MB binary on a VM).
					if h.Size < 0 {
						return fmt.Errorf("%s: size %d", h.Name, h.Size)
					}
					data = make([]byte, h.Size)
					if _, err = io.ReadFull(tr, data); err != nil {
						return err
					}
				}
				out[name] = ctxEntry{hdr: h, data: data}
			}
		}()
		if err != nil {
			return nil, fmt.Errorf("reading layer %s: %w", shortDigest(l.DiffID), err)
		}
	}
	for _, names := range want {
		for n := range names {
			if _, ok := out[n]; !ok {
				return nil, fmt.Errorf("%s is no longer in the image's stored layers", n)
			}
		}
	}
	return out, nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}
