package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// fingerprintVersion changes when what an assembled image holds for the
// same inputs changes, so that an old fingerprint never stands for it.
const fingerprintVersion = "2"

// ImageMemo is what State remembers of a service's last assembled image:
// a fingerprint of its inputs (see fingerprint) and the image they gave.
type ImageMemo struct {
	Key string `json:"key"`
	Ref string `json:"ref"`
	ID  string `json:"id"`
}

// fingerprint hashes what an assembled image of spec is made from, reading
// no file's content: the Dockerfile's bytes, the build args, the base
// image's ID, whether the supervisor goes in, devenv's own build, and the
// path, size, mode and modification time (and link target) of every path
// the build context sends. The same fingerprint means the same image, as
// long as no file changed its content but kept its size and modification
// time to the nanosecond. With a scanned cache (contextCache.update) the
// paths come from it instead of a walk, with the same result.
func fingerprint(spec Spec, opts ContextOptions, baseID string, live bool, scanned *contextCache) (string, error) {
	dfBytes, dfName, err := dockerfileOf(spec, opts)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "v%s %s\nproject %q service %q\nlive %t base %q\ndockerfile %q %d\n",
		fingerprintVersion, devenvBuild(), spec.Project, spec.Service, live, baseID, dfName, len(dfBytes))
	h.Write(dfBytes)
	keys := make([]string, 0, len(spec.Args))
	for k := range spec.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "\narg %q=%q", k, spec.Args[k])
	}
	labels := make([]string, 0, len(spec.Labels))
	for k, v := range spec.Labels {
		labels = append(labels, fmt.Sprintf("%q=%q", k, v))
	}
	slices.Sort(labels)
	fmt.Fprintf(h, "\nlabels %v\n", labels)
	if scanned != nil {
		// The lines are kept (a save's fingerprint makes only the changed
		// files' again), cut from one slab of about their size rather than
		// allocated one by one. Each line keeps its whole slab alive: a
		// fixed-size slab per save would keep 256 kB per changed file.
		need := 0
		for _, rel := range scanned.order {
			if f := scanned.files[rel]; f.fp == nil {
				need += len(rel) + len(f.link) + 64 // quotes, numbers, spaces
			}
		}
		var slab []byte
		if need > 0 {
			slab = make([]byte, 0, need)
		}
		for _, rel := range scanned.order {
			f := scanned.files[rel]
			if f.fp == nil {
				// (Should a line outgrow the estimate, append moves on to a
				// new array; the lines cut so far keep the old one.)
				n := len(slab)
				slab = appendFingerprintLine(slab, rel, f.size, f.mode, f.mtime.UnixNano(), f.link)
				f.fp = slab[n:len(slab):len(slab)]
			}
			h.Write(f.fp)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	err = walkContext(spec, dfName, func(p, rel string, d fs.DirEntry) error {
		if rel == dfName {
			return nil // its bytes are hashed above
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h.Write(appendFingerprintLine(nil, rel, fi.Size(), fi.Mode(), fi.ModTime().UnixNano(), link))
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// appendFingerprintLine appends a path's line of the fingerprint to b:
// the bytes fmt makes of "%q %d %o %d %q\n" with the path, size, mode,
// modification time in nanoseconds and link target, without fmt's cost
// per file.
func appendFingerprintLine(b []byte, rel string, size int64, mode fs.FileMode, mtime int64, link string) []byte {
	b = strconv.AppendQuote(b, rel)
	b = append(b, ' ')
	b = strconv.AppendInt(b, size, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(mode), 8)
	b = append(b, ' ')
	b = strconv.AppendInt(b, mtime, 10)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, link)
	return append(b, '\n')
}

// devenvBuild names the devenv binary that assembles (its module version
// and VCS revision when known), so a new devenv never reuses an old one's
// fingerprint.
var devenvBuild = func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	s := bi.Main.Version
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.revision" || kv.Key == "vcs.modified" || kv.Key == "vcs.time" {
			s += " " + kv.Value
		}
	}
	return s
}

// quickImage returns the image State remembers for spec when its inputs'
// fingerprint is unchanged and Docker still has that image; ok is false
// otherwise (then key, when not empty, is the fingerprint to remember
// after the build).
func quickImage(ctx context.Context, docker *client.Client, spec Spec, opts ImageOptions, r *recipe, scanned *contextCache) (res Result, key string, ok bool) {
	baseID := ""
	if r.base != "" {
		if docker == nil {
			return Result{}, "", false
		}
		img, err := docker.ImageInspect(ctx, r.base)
		if err != nil {
			return Result{}, "", false
		}
		baseID = img.ID
	}
	key, err := fingerprint(spec, opts.ContextOptions, baseID, opts.Live, scanned)
	if err != nil {
		return Result{}, "", false
	}
	m, found := opts.State.image(spec.Service)
	if !found || m.Key != key || !opts.Quick || docker == nil {
		return Result{}, key, false
	}
	// The same content under another registry (registry: changed) is
	// tagged again.
	if repo, err := RepositoryIn(spec.Registry, spec.Project, spec.Service); err != nil || !strings.HasPrefix(m.Ref, repo+":") {
		return Result{}, key, false
	}
	img, err := docker.ImageInspect(ctx, m.Ref)
	if err != nil || img.ID != m.ID {
		return Result{}, key, false
	}
	return Result{Ref: m.Ref, ID: m.ID, Cached: true}, key, true
}

// image returns the memo State holds for service.
func (s *State) image(service string) (ImageMemo, bool) {
	if s == nil {
		return ImageMemo{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.Images[service]
	return m, ok
}

// setImage remembers service's image and writes the file.
func (s *State) setImage(service string, m ImageMemo) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.Images == nil {
		s.Images = map[string]ImageMemo{}
	}
	if s.Images[service] == m {
		s.mu.Unlock()
		return nil
	}
	s.Images[service] = m
	s.mu.Unlock()
	return s.write()
}
