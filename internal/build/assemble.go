package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/supervise"
	"github.com/devenv-tool/devenv/project"
)

// Assembled is an image devenv put together itself from a simple
// Dockerfile (see Image), without the engine's builder: the base image's
// layers, one layer per COPY, and a config. The image ID is the config's
// digest, so the same inputs give the same ID.
type Assembled struct {
	Config []byte
	Layers []Layer // base layers first
	// Live is set when the image runs its command under devenv's
	// supervisor (ImageOptions.Live), so that a running container can be
	// updated in place (see LiveDiff).
	Live bool
	// Base is the ID of the base image in Docker, which holds the layers
	// given without data; "" for FROM scratch.
	Base string
	// memo is the image's COPY layers as entries, for the context cache
	// (nil once the build took it).
	memo *assembleMemo
	// baseFiles is the base image's file system (see readBaseFolders),
	// kept for a live image: LiveDiff asks it what a path devenv's layers
	// no longer write goes back to. nil for FROM scratch, or when it could
	// not be read (LiveDiff then leaves any removal to an image swap).
	baseFiles map[string]fsMeta
}

// Layer is one uncompressed layer of an assembled image. A layer with
// neither Data nor Path is the base image's, which is in Docker (and, once
// an image on the same base was loaded, in the cluster).
type Layer struct {
	DiffID string // sha256:<hex> of the tar
	Size   int64
	// Data is the tar while it is held in memory; nil once it is stored
	// (Path) and for the base image's layers.
	Data []byte
	// Path is the file holding the tar once it is stored (Assembled.Store).
	Path string
	// Files indexes what the tar holds, in its order; set when it is
	// stored (what LiveDiff compares without reading the tar).
	Files []FileSum
}

// imageConfig is the image config JSON devenv writes.
type imageConfig struct {
	Architecture string                          `json:"architecture"`
	OS           string                          `json:"os"`
	Variant      string                          `json:"variant,omitempty"`
	Config       dockerspec.DockerOCIImageConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// ctxEntry is one file of the build context.
type ctxEntry struct {
	hdr  *tar.Header
	data []byte
	// src and file are where a regular file's content is read from and
	// what the last scan saw of it, when data is nil.
	src  string
	file *ctxFile
	rel  string // the context path of file
}

// assembleInput is what assemble makes the COPY layers from.
type assembleInput struct {
	// cache holds the scanned context (contextCache.update) and the last
	// image's layers.
	cache   *contextCache
	dfBytes []byte
	// layerDir is where layers are written ("" keeps them in memory).
	layerDir string
	// chunks collects the COPY layers of the image (the cache's next).
	chunks map[[sha256.Size]byte]*chunk
}

// assemble makes the image of recipe r from the build context in. It
// returns an error wrapping errNotSimple when the engine's builder must
// decide (a base image Docker does not have, an ambiguous COPY). state,
// when not nil, keeps what it learns of the base image's folders.
func assemble(ctx context.Context, docker *client.Client, spec Spec, r *recipe, in assembleInput, labels map[string]string, live bool, state *State) (*Assembled, error) {
	cfg := imageConfig{OS: "linux"}
	cfg.RootFS.Type = "layers"
	var layers []Layer
	baseID := ""
	if r.base != "" {
		if docker == nil {
			return nil, fmt.Errorf("%w: no Docker engine to read base image %s from", errNotSimple, r.base)
		}
		base, err := docker.ImageInspect(ctx, r.base)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("%w: base image %s is not in Docker", errNotSimple, r.base)
			}
			return nil, fmt.Errorf("service %q: inspecting base image %s: %w", spec.Service, r.base, err)
		}
		baseID = base.ID
		cfg.Architecture, cfg.OS, cfg.Variant = base.Architecture, base.Os, base.Variant
		if base.Config != nil {
			cfg.Config = *base.Config
		}
		for _, d := range base.RootFS.Layers {
			layers = append(layers, Layer{DiffID: d})
		}
	}
	if cfg.Architecture == "" {
		// FROM scratch (or a base that names none): the image runs on the
		// engine's architecture.
		arch, err := engineArch(ctx, docker)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", spec.Service, err)
		}
		cfg.Architecture = arch
	}
	if live {
		l, err := liveLayer(ctx, cfg.Architecture)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	// The COPY layers: patched from the last assembly's when only files'
	// contents changed since (see assembleMemo), else made from the
	// context's entries.
	key := memoKey(r, in.dfBytes, baseID, live, in.layerDir, in.cache.chunkMin)
	memo, dirty := in.cache.patched(key)
	var files map[string]ctxEntry
	if memo == nil {
		memo = &assembleMemo{key: key}
		var err error
		if files, err = in.cache.ctxFiles(spec, in.dfBytes); err != nil {
			return nil, fmt.Errorf("service %q: reading the build context: %w", spec.Service, err)
		}
	}
	if dirty != nil {
		in.cache.patches++
	}
	copies := 0
	c := &cfg.Config
	workdir := c.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	cmdSet := false
	where := func(s step) string { return fmt.Sprintf("%s:%d", spec.dockerfile(), s.line) }
	// What is a folder where a COPY writes: the engine copies a file into
	// a folder that exists (made by an earlier step, or in the base).
	made := map[string]fsMeta{}
	base := &baseFS{docker: docker, image: r.base}
	defer base.close()
	dirAt := func(p string) (bool, error) {
		if m, ok := made[strings.TrimPrefix(p, "/")]; ok {
			return m.Type == tar.TypeDir, nil
		}
		return base.isDir(ctx, p)
	}
	// The folders a layer writes above its files keep the mode and owner
	// they have below (the base's read once, on the first question).
	dirs := &folders{made: made}
	if baseID != "" {
		var baseDirs map[string]fsMeta
		dirs.base = func(ctx context.Context) (map[string]fsMeta, error) {
			if baseDirs == nil {
				m, err := state.baseFolders(ctx, docker, baseID)
				if err != nil {
					return nil, err
				}
				baseDirs = m
			}
			return baseDirs, nil
		}
	}
	parent := func(p string) (*tar.Header, error) { return dirs.header(ctx, p) }
	// add appends a layer of the image's own and notes what it holds.
	add := func(tarb []byte, err error) error {
		if err != nil {
			return err
		}
		if err := record(made, tarb); err != nil {
			return err
		}
		layers = append(layers, dataLayer(tarb))
		return nil
	}
	// A patched assembly asks made only in a WORKDIR (its folders): the
	// COPYs after the last one need not fill it (50,000 entries at once).
	lastWorkdir := -1
	for i, s := range r.steps {
		if s.op == "workdir" {
			lastWorkdir = i
		}
	}
	for i, s := range r.steps {
		switch s.op {
		case "copy":
			var ls []Layer
			if dirty != nil {
				cm := &memo.steps[copies]
				var err error
				if ls, cm.keys, err = in.cache.layersOf(cm.parts, cm.keys, dirty[copies], in.layerDir, in.chunks); err != nil {
					return nil, err
				}
				for _, part := range cm.parts {
					if i > lastWorkdir {
						break
					}
					for _, e := range part {
						made[strings.Trim(e.hdr.Name, "/")] = metaOf(e.hdr)
					}
				}
			} else {
				out, err := copyLayer(files, s, workdir, where(s), spec.Context, dirAt, parent)
				if err != nil {
					return nil, err
				}
				var cm copyMemo
				if ls, cm, err = in.cache.copyLayers(out, in.layerDir, in.chunks); err != nil {
					return nil, err
				}
				memo.steps = append(memo.steps, cm)
				for name, e := range out {
					made[name] = metaOf(e.hdr)
				}
			}
			copies++
			layers = append(layers, ls...)
		case "env":
			for i := 0; i+1 < len(s.args); i += 2 {
				c.Env = setEnv(c.Env, s.args[i], s.args[i+1])
			}
		case "label":
			for i := 0; i+1 < len(s.args); i += 2 {
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				c.Labels[s.args[i]] = s.args[i+1]
			}
		case "workdir":
			workdir = path.Join(workdir, s.args[0])
			if path.IsAbs(s.args[0]) {
				workdir = path.Clean(s.args[0])
			}
			c.WorkingDir = workdir
			// The engine creates the folder (and those above it) where
			// missing; one that exists keeps its mode and owner.
			l, err := dirLayer(workdir, parent)
			if err != nil {
				return nil, fmt.Errorf("%s: WORKDIR %s: %w", where(s), workdir, err)
			}
			if err := add(l, nil); err != nil {
				return nil, err
			}
		case "user":
			c.User = s.args[0]
		case "expose":
			for _, p := range s.args {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				if c.ExposedPorts == nil {
					c.ExposedPorts = map[string]struct{}{}
				}
				c.ExposedPorts[p] = struct{}{}
			}
		case "entrypoint":
			c.Entrypoint = command(s)
			if !cmdSet {
				c.Cmd = nil // an inherited CMD does not outlive a new ENTRYPOINT
			}
		case "cmd":
			c.Cmd, cmdSet = command(s), true
		}
	}
	var baseFiles map[string]fsMeta
	if live && dirs.base != nil {
		m, err := dirs.base(ctx)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		baseFiles = m // nil when unreadable (see Assembled.baseFiles)
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	maps.Copy(c.Labels, labels)
	if live {
		if len(c.Entrypoint) == 0 && len(c.Cmd) == 0 {
			return nil, fmt.Errorf("%w: the image has no ENTRYPOINT or CMD to supervise", errNoLive)
		}
		// The supervisor runs the image's command: ENTRYPOINT + CMD.
		c.Entrypoint = append([]string{supervise.Path, "--"}, c.Entrypoint...)
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []string{}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if dirty == nil {
		memo.index()
	}
	return &Assembled{Config: b, Layers: layers, Live: live, Base: baseID, baseFiles: baseFiles, memo: memo}, nil
}

// errNoLive says why an image cannot be assembled for live update; Image
// then assembles it without the supervisor.
var errNoLive = errors.New("no live update")

// engineArch is the Docker engine's architecture (a GOARCH name); without
// an engine (docker nil: assembling FROM scratch in tests) the host's.
func engineArch(ctx context.Context, docker *client.Client) (string, error) {
	if docker == nil {
		return runtime.GOARCH, nil
	}
	v, err := docker.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("asking Docker for its architecture: %w", err)
	}
	return v.Arch, nil
}

// liveLayer is the supervisor's layer for an image of architecture arch,
// or an error wrapping errNoLive that says why there is none (devenv
// carries no supervisor for arch).
func liveLayer(ctx context.Context, arch string) (Layer, error) {
	if l, ok := liveLayers.Load(arch); ok {
		return l.(Layer), nil
	}
	sup, err := supervise.Binary(ctx, arch)
	if err != nil {
		return Layer{}, fmt.Errorf("%w: %v", errNoLive, err)
	}
	tarb, err := supervisorLayer(sup)
	if err != nil {
		return Layer{}, err
	}
	l := dataLayer(tarb)
	l.Files, err = indexTar(bytes.NewReader(tarb))
	if err != nil {
		return Layer{}, err
	}
	liveLayers.Store(arch, l)
	return l, nil
}

// LiveLayerBytes is how many bytes the supervisor's layers made so far
// hold (liveLayers): memory a process keeps once, whatever the number of
// images or saves.
func LiveLayerBytes() int {
	n := 0
	liveLayers.Range(func(_, v any) bool {
		n += cap(v.(Layer).Data)
		return true
	})
	return n
}

// liveLayers are the supervisor's layers made so far, by architecture:
// the same bytes for every image of a process (a few MB not read, packed
// and hashed again on every save). Their Data is shared, never written.
var liveLayers sync.Map

// supervisorLayer is the layer holding devenv's supervisor and the folder
// it writes its state to (writable by any user: the image's USER runs it).
func supervisorLayer(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(bin) + 8<<10) // the headers, the padding and the end: kept for the process's life
	tw := tar.NewWriter(&buf)
	dir := strings.TrimPrefix(path.Dir(supervise.Path), "/")
	if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(supervise.Path, "/"), Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ID is the image ID: the digest of the config.
func (a *Assembled) ID() string {
	sum := sha256.Sum256(a.Config)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func command(s step) []string {
	if s.json {
		return slices.Clone(s.args)
	}
	return []string{"/bin/sh", "-c", s.args[0]}
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if name, _, _ := strings.Cut(kv, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// copyLayer makes the entries of one COPY's layer (see
// contextCache.copyLayers), by target path without leading slash: the
// sources' files at their destinations, with their modes, owned by root,
// and the folders above them as parent gives them (path without leading
// or trailing slash: as the image has the folder so far, or a new one).
func copyLayer(files map[string]ctxEntry, s step, workdir, where, contextDir string, dirAt func(string) (bool, error), parent func(string) (*tar.Header, error)) (map[string]ctxEntry, error) {
	srcs, dest := s.args[:len(s.args)-1], s.args[len(s.args)-1]
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join(workdir, dest)
	}
	dest = path.Clean(dest)
	var matches []string
	for _, src := range srcs {
		clean := strings.TrimPrefix(path.Clean("/"+src), "/")
		var found []string
		if strings.ContainsAny(clean, "*?[") {
			for name := range files {
				if ok, err := path.Match(clean, name); err != nil {
					return nil, fmt.Errorf("%w: %s: COPY pattern %q: %v", errNotSimple, where, src, err)
				} else if ok {
					found = append(found, name)
				}
			}
			slices.Sort(found)
		} else if _, ok := files[clean]; ok || clean == "" {
			found = []string{clean}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: COPY %s: no such file in the build context %s (did the prebuild make it? does .dockerignore exclude it?)", where, src, contextDir)
		}
		matches = append(matches, found...)
	}
	isDir := func(n string) bool { return n == "" || files[n].hdr.Typeflag == tar.TypeDir }
	if len(matches) > 1 || isDir(matches[0]) {
		if len(matches) > 1 && !destDir {
			return nil, fmt.Errorf("%w: %s: several sources need a destination ending in /", errNotSimple, where)
		}
		destDir = true
	} else if !destDir {
		// One file to a path without a trailing slash: into it when it is
		// a folder already.
		d, err := dirAt(dest)
		if err != nil {
			return nil, fmt.Errorf("%s: COPY: finding out whether %s is a folder: %w", where, dest, err)
		}
		destDir = d
	}
	// target path (no leading /) -> entry
	out := map[string]ctxEntry{}
	put := func(target string, e ctxEntry) {
		h := *e.hdr
		h.Name = strings.TrimPrefix(target, "/")
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		e.hdr = &h
		out[strings.TrimPrefix(target, "/")] = e
	}
	for _, m := range matches {
		if !isDir(m) {
			target := dest
			if destDir {
				target = path.Join(dest, path.Base(m))
			}
			put(target, files[m])
			continue
		}
		prefix := m + "/"
		if m == "" {
			prefix = ""
		}
		for name, e := range files {
			if rel, ok := strings.CutPrefix(name, prefix); ok && rel != "" {
				put(path.Join(dest, rel), e)
			}
		}
		if m != "" {
			put(dest, files[m])
		} else if dest != "/" {
			put(dest, ctxEntry{hdr: &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}})
		}
	}
	// The folders above every target, unless given: an entry for each
	// (overlay2 would make a missing one 0755 root over the one below),
	// restating the folder as the image has it.
	for _, t := range slices.Collect(maps.Keys(out)) {
		for d := path.Dir(t); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			if _, ok := out[d]; !ok {
				h, err := parent(d)
				if err != nil {
					return nil, fmt.Errorf("%s: COPY into /%s: %w", where, d, err)
				}
				out[d] = ctxEntry{hdr: h}
			}
		}
	}
	return out, nil
}

// dataLayer is a layer with its tar.
func dataLayer(tarb []byte) Layer {
	sum := sha256.Sum256(tarb)
	return Layer{DiffID: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(tarb)), Data: tarb}
}

// record notes every entry of a layer (type, mode, owner) by path (no
// leading or trailing slash).
func record(made map[string]fsMeta, layer []byte) error {
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		made[strings.Trim(h.Name, "/")] = metaOf(h)
	}
}

// baseFS answers questions about the base image's files, from a container
// created (never started) from it on the first question.
type baseFS struct {
	docker *client.Client
	image  string // "" for scratch
	id     string
}

// isDir reports whether p is a folder in the base image (following a
// symbolic link once).
func (b *baseFS) isDir(ctx context.Context, p string) (bool, error) {
	if b.image == "" {
		return false, nil
	}
	if b.id == "" {
		c, err := b.docker.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: b.image, Entrypoint: []string{"/devenv-never-started"}, Labels: map[string]string{project.LabelPurpose: "stat"}},
		})
		if err != nil {
			return false, fmt.Errorf("creating a container from %s to look at its files: %w", b.image, err)
		}
		b.id = c.ID
	}
	for range 2 {
		st, err := b.docker.ContainerStatPath(ctx, b.id, client.ContainerStatPathOptions{Path: p})
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if st.Stat.Mode&os.ModeSymlink == 0 || st.Stat.LinkTarget == "" {
			return st.Stat.Mode.IsDir(), nil
		}
		p = st.Stat.LinkTarget
	}
	return false, nil
}

func (b *baseFS) close() {
	if b.id != "" {
		_, _ = b.docker.ContainerRemove(context.Background(), b.id, client.ContainerRemoveOptions{Force: true})
	}
}

// dirLayer is a layer holding folder dir and the folders above it, each as
// parent gives it (see copyLayer).
func dirLayer(dir string, parent func(string) (*tar.Header, error)) ([]byte, error) {
	var names []string
	for d := strings.TrimPrefix(path.Clean(dir), "/"); d != "." && d != ""; d = path.Dir(d) {
		names = append(names, d)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h, err := parent(n)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadIntoDocker loads the assembled image into Docker as ref, sending only
// its own layers (the engine has the base's), and of those only the ones
// whose chains state does not know to be in Docker.
func (a *Assembled) loadIntoDocker(ctx context.Context, docker *client.Client, ref string, state *State) error {
	chains := a.chainIDs()
	omit := make([]bool, len(chains))
	left := 0
	for i, chain := range chains {
		if !a.Layers[i].base() && state.dockerHas(chain) {
			omit[i] = true
			left++
		}
	}
	state.noteLeftOut(left)
	err := a.load(ctx, docker, ref, omit)
	if err != nil && ctx.Err() == nil && left > 0 {
		// A layer left out is gone from Docker (an image removed
		// meanwhile), or the engine wants them all: once more with all
		// of the image's own.
		state.setDockerHas(chains, false)
		if err = a.load(ctx, docker, ref, nil); err == nil {
			state.loadWhole()
		}
	}
	if err == nil {
		state.setDockerHas(chains, true)
	}
	return err
}

// load sends the image's archive to Docker, leaving out the layers omit
// marks (see dockerArchive).
func (a *Assembled) load(ctx context.Context, docker *client.Client, ref string, omit []bool) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(a.dockerArchive(pw, ref, omit)) }()
	resp, err := docker.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		_ = pr.CloseWithError(err)
		return err
	}
	defer resp.Close()
	err = dockerx.ReadStream(resp, dockerx.StreamOptions{Out: io.Discard, Tail: tailLines})
	_ = pr.CloseWithError(errors.New("load ended"))
	return err
}

// chainIDs are the image's layer chain IDs, base first: the ID Docker's
// layer store knows each layer by, with all those below it.
func (a *Assembled) chainIDs() []string {
	ids := make([]string, 0, len(a.Layers))
	chain := ""
	for _, l := range a.Layers {
		if chain == "" {
			chain = l.DiffID
		} else {
			sum := sha256.Sum256([]byte(chain + " " + l.DiffID))
			chain = "sha256:" + hex.EncodeToString(sum[:])
		}
		ids = append(ids, chain)
	}
	return ids
}

// addFile copies a stored layer's file into tw as name.
func addFile(tw *tar.Writer, name string, l Layer) error {
	r, err := l.open()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: l.Size, ModTime: epoch}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, r, l.Size); err != nil {
		return fmt.Errorf("reading layer %s: %w", shortDigest(l.DiffID), err)
	}
	return nil
}

// dockerArchive writes the image as a legacy `docker save` archive holding
// the config and the layers with data; the engine skips reading the layers
// it already has.
//
// omit, when not nil, leaves out more layers: those it marks, which Docker
// must have by their chains (see chainIDs). The engine does not open a
// layer's file when it has its chain, but it unpacks the whole archive
// first: a layer left out is one less to write to its disk (0.4 s for a
// 60 MB image of 50,000 small files here, on every save).
func (a *Assembled) dockerArchive(w io.Writer, ref string, omit []bool) error {
	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	cfgName := strings.TrimPrefix(a.ID(), "sha256:") + ".json"
	if err := add(cfgName, a.Config); err != nil {
		return err
	}
	var paths []string
	for i, l := range a.Layers {
		p := strings.TrimPrefix(l.DiffID, "sha256:") + "/layer.tar"
		paths = append(paths, p)
		if l.base() || (omit != nil && omit[i]) {
			continue
		}
		if l.Data != nil {
			if err := add(p, l.Data); err != nil {
				return err
			}
			continue
		}
		if err := addFile(tw, p, l); err != nil {
			return err
		}
	}
	m, err := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": paths}})
	if err != nil {
		return err
	}
	if err := add("manifest.json", m); err != nil {
		return err
	}
	return tw.Close()
}
