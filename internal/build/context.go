package build

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ContextOptions change what Context sends.
type ContextOptions struct {
	// Dockerfile, when set, replaces the Dockerfile's bytes in the tar (the
	// user's file is never touched). The Dockerfile then need not exist.
	Dockerfile []byte
}

// outsideDockerfile is the tar name of a Dockerfile that lies outside the context.
const outsideDockerfile = ".devenv.Dockerfile"

// Context returns the build context as a tar and its digest ("sha256:..."),
// a hash of the content: the tar is deterministic (sorted entries, zero
// modification times, owner 0:0), so the same files give the same digest.
// Files excluded by the context's .dockerignore are left out; the Dockerfile
// and the .dockerignore itself are always sent (the engine drops them from
// what COPY sees when they are excluded, as with `docker build`). The tar is
// held in memory.
func Context(spec Spec, opts ContextOptions) (io.Reader, string, error) {
	data, _, digest, err := buildContext(spec, opts)
	if err != nil {
		return nil, "", err
	}
	return bytes.NewReader(data), digest, nil
}

// buildContext returns the tar, the Dockerfile's name inside it and the digest.
func buildContext(spec Spec, opts ContextOptions) ([]byte, string, string, error) {
	if err := spec.checkContext(); err != nil {
		return nil, "", "", err
	}
	dfBytes, dfName, err := dockerfileOf(spec, opts)
	if err != nil {
		return nil, "", "", err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dfWritten := false
	err = walkContext(spec, dfName, func(p, rel string, d fs.DirEntry) error {
		if rel == dfName {
			dfWritten = true
			return writeEntry(tw, rel, 0o644, dfBytes)
		}
		return addPath(tw, p, rel, d)
	})
	if err != nil {
		return nil, "", "", err
	}
	if !dfWritten {
		// Ignored by .dockerignore, inside an ignored folder, outside the
		// context, or a replacement for a file that does not exist.
		if err := writeEntry(tw, dfName, 0o644, dfBytes); err != nil {
			return nil, "", "", fmt.Errorf("service %q: packing Dockerfile: %w", spec.Service, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", "", fmt.Errorf("service %q: packing build context: %w", spec.Service, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), dfName, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// dockerfileOf returns the Dockerfile's bytes (opts' replacement or the
// file's) and its name inside the context's tar.
func dockerfileOf(spec Spec, opts ContextOptions) ([]byte, string, error) {
	dfPath := spec.dockerfile()
	dfBytes := opts.Dockerfile
	if dfBytes == nil {
		b, err := os.ReadFile(dfPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("service %q: Dockerfile %s not found: create it or set the service's dockerfile in devenv.yaml", spec.Service, dfPath)
		}
		if err != nil {
			return nil, "", fmt.Errorf("service %q: reading Dockerfile: %w", spec.Service, err)
		}
		dfBytes = b
	}
	return dfBytes, dockerfileName(spec), nil
}

// dockerfileName is the Dockerfile's name inside the context's tar.
func dockerfileName(spec Spec) string {
	if rel, err := filepath.Rel(spec.Context, spec.dockerfile()); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	return outsideDockerfile
}

// walkContext calls fn, in lexical order, for every path of spec's context
// that a build sends: what the context's .dockerignore does not exclude,
// plus the .dockerignore itself and the Dockerfile (dfName) when they are
// inside the context.
func walkContext(spec Spec, dfName string, fn func(p, rel string, d fs.DirEntry) error) error {
	pm, err := dockerignore(spec.Context)
	if err != nil {
		return fmt.Errorf("service %q: %w", spec.Service, err)
	}
	err = filepath.WalkDir(spec.Context, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(spec.Context, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		send, descend, err := sendable(pm, dfName, rel)
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		if !send {
			if d.IsDir() && !descend {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(p, rel, d)
	})
	if err != nil {
		return fmt.Errorf("service %q: packing build context %s: %w", spec.Service, spec.Context, err)
	}
	return nil
}

// contextEntries returns, with their lstat, the paths walkContext would
// visit (pm is the context's .dockerignore), read by walkTree: in
// parallel, each stat relative to its folder.
func contextEntries(spec Spec, dfName string, pm *patternmatcher.PatternMatcher) ([]treeEntry, error) {
	ents, err := walkTree(spec.Context, 0, contextFilter(dfName, pm))
	if err != nil {
		return nil, fmt.Errorf("service %q: packing build context %s: %w", spec.Service, spec.Context, err)
	}
	return ents, nil
}

// contextFilter is walkContext's choice of paths as a treeFilter.
func contextFilter(dfName string, pm *patternmatcher.PatternMatcher) treeFilter {
	return func(rels []string, dirs, keep, descend []bool) error {
		for i, rel := range rels {
			send, desc, err := sendable(pm, dfName, rel)
			if err != nil {
				return fmt.Errorf(".dockerignore: %w", err)
			}
			keep[i], descend[i] = send, send || desc
		}
		return nil
	}
}

// sendable reports whether a build sends path rel of the context (pm is
// its .dockerignore, dfName the Dockerfile's name in it) and, for a folder
// it does not send, whether what the folder holds may still be sent (a
// .dockerignore with exclusions, "!pattern").
func sendable(pm *patternmatcher.PatternMatcher, dfName, rel string) (send, descend bool, err error) {
	if rel == dfName || rel == ".dockerignore" || pm == nil {
		// The Dockerfile and the .dockerignore are always sent, like
		// docker build does.
		return true, true, nil
	}
	excluded, err := pm.MatchesOrParentMatches(rel)
	if err != nil || !excluded {
		return !excluded, true, err
	}
	return false, pm.Exclusions(), nil
}

func dockerignore(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	defer f.Close()
	pats, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	if len(pats) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return pm, nil
}

var epoch = time.Unix(0, 0)

func header(name string, mode fs.FileMode) *tar.Header {
	return &tar.Header{Name: name, Mode: int64(mode.Perm()), ModTime: epoch, Format: tar.FormatPAX}
}

func writeEntry(tw *tar.Writer, name string, mode fs.FileMode, data []byte) error {
	h := header(name, mode)
	h.Typeflag = tar.TypeReg
	h.Size = int64(len(data))
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func addPath(tw *tar.Writer, p, rel string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		h := header(rel+"/", fi.Mode())
		h.Typeflag = tar.TypeDir
		return tw.WriteHeader(h)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		h := header(rel, 0o777)
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
		return tw.WriteHeader(h)
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := header(rel, fi.Mode())
		h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
			return fmt.Errorf("%s: %w", rel, shortRead(err))
		}
		return nil
	default:
		return nil // sockets, devices, pipes: not part of a build context
	}
}
