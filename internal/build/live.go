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
	// first. A removed folder is removed with what it holds.
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
	old, err := fileMap(from)
	if err != nil {
		return Changes{}, err
	}
	cur, err := fileMap(to)
	if err != nil {
		return Changes{}, err
	}
	var ch Changes
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cur[name]; ok {
			continue
		}
		if d := path.Dir(name); d != "." {
			if _, gone := old[d]; gone && cur[d] == nil {
				continue // its folder goes
			}
		}
		ch.Removed = append(ch.Removed, "/"+name)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		e := cur[name]
		if o, ok := old[name]; ok && sameEntry(o, e) {
			continue
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return Changes{}, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return Changes{}, err
		}
		ch.Files = append(ch.Files, "/"+name)
	}
	if err := tw.Close(); err != nil {
		return Changes{}, err
	}
	if len(ch.Files) > 0 {
		ch.Tar = buf.Bytes()
	}
	return ch, nil
}

// baseLayers are the layers that came from the base image.
func baseLayers(a *Assembled) []string {
	var ids []string
	for _, l := range a.Layers {
		if l.Data == nil {
			ids = append(ids, l.DiffID)
		}
	}
	return ids
}

// fileMap reads the image's own layers (the base's excluded) into entries
// by path (no leading or trailing slash), later layers winning.
func fileMap(a *Assembled) (map[string]*ctxEntry, error) {
	files := map[string]*ctxEntry{}
	for _, l := range a.Layers {
		if l.Data == nil {
			continue
		}
		tr := tar.NewReader(bytes.NewReader(l.Data))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading layer %s: %w", shortDigest(l.DiffID), err)
			}
			var data []byte
			if h.Typeflag == tar.TypeReg {
				if data, err = io.ReadAll(tr); err != nil {
					return nil, err
				}
			}
			files[strings.Trim(h.Name, "/")] = &ctxEntry{hdr: h, data: data}
		}
	}
	return files, nil
}

func sameEntry(a, b *ctxEntry) bool {
	x, y := a.hdr, b.hdr
	return x.Typeflag == y.Typeflag && x.Mode == y.Mode && x.Uid == y.Uid && x.Gid == y.Gid && x.Linkname == y.Linkname && bytes.Equal(a.data, b.data)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}
