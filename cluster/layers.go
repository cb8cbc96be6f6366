package cluster

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
	"os"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"

	"github.com/devenv-tool/devenv/internal/imagearchive"
)

// errNotLegacyArchive means `docker save` produced an archive the layer
// loader cannot take apart: neither a legacy docker-archive (Docker before
// 25) nor an OCI image layout (Docker 25 and later), or one with parts it
// does not read (zstd layers, several images). The caller loads the full
// archive instead.
var errNotLegacyArchive = errors.New("not an image archive the layer loader reads")

// nodeBlobs lists the content digests a node's containerd holds.
func nodeBlobs(n nodes.Node) (map[string]bool, error) {
	var out bytes.Buffer
	if err := n.Command("ctr", "--namespace=k8s.io", "content", "ls", "-q").SetStdout(&out).Run(); err != nil {
		return nil, fmt.Errorf("listing the content of node %s: %w", n.String(), err)
	}
	have := map[string]bool{}
	for _, l := range strings.Fields(out.String()) {
		have[l] = true
	}
	return have, nil
}

// savedImage is a `docker save` archive taken apart: the config, the
// manifest's layer order, and each layer the node lacks, uncompressed, as a
// temporary file (or in memory) with its digest.
type savedImage struct {
	config []byte
	layers []savedLayer // in manifest order
	tmp    string
}

type savedLayer struct {
	digest string // sha256:<hex> of the uncompressed tar, the layer's diffID
	size   int64
	file   string // "" when the node already has it (not kept)
	data   []byte // the layer in memory instead of file (LoadParts, small layers)
}

func (s *savedImage) cleanup() {
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

// smallEntry is the size up to which readSaved keeps an archive entry in
// memory (small layers); larger entries go to files.
const smallEntry = 1 << 20

// readSaved reads a `docker save` archive of one image, in either format
// Docker writes (see internal/imagearchive): the legacy docker-archive
// (Docker before 25) or an OCI image layout (Docker 25 and later, layers
// possibly gzip-compressed). It keeps only the layers the node lacks,
// uncompressed, on disk (or in memory when small). It returns an error
// wrapping errNotLegacyArchive for an archive it cannot take apart.
func readSaved(r io.Reader, have map[string]bool) (*savedImage, error) {
	return readArchive(r, have, smallEntry)
}

// readArchive is readSaved keeping entries up to small bytes in memory.
func readArchive(r io.Reader, have map[string]bool, small int64) (*savedImage, error) {
	tmp, err := os.MkdirTemp("", "devenv-load-")
	if err != nil {
		return nil, err
	}
	s := &savedImage{tmp: tmp}
	ok := false
	defer func() {
		if !ok {
			s.cleanup()
		}
	}()
	a := &archive{tmp: tmp, small: small, entries: map[string]*archiveEntry{}}
	ar, err := imagearchive.Read(r, func(e *imagearchive.Entry) error {
		ae, err := a.readEntry(e, have)
		if err != nil {
			return err
		}
		a.entries[e.Name] = ae
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the saved image: %w", err)
	}
	img, err := ar.One()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotLegacyArchive, err)
	}
	if img.Config == nil {
		return nil, fmt.Errorf("%w: no config %s", errNotLegacyArchive, img.ConfigPath)
	}
	s.config = img.Config
	done := map[string]savedLayer{} // by entry: a layer listed twice is read once
	for _, il := range img.Layers {
		l, found := done[il.Path]
		if !found {
			f, _ := ar.File(il.Path) // One found it
			if l, err = a.layer(f, a.entries[il.Path], il.DiffID, have); err != nil {
				return nil, err
			}
			done[il.Path] = l
		}
		s.layers = append(s.layers, l)
	}
	ok = true
	return s, nil
}

// archive is a `docker save` archive being taken apart: what readEntry
// kept of its files, by path.
type archive struct {
	tmp     string
	small   int64
	n       int // files written to tmp
	entries map[string]*archiveEntry
}

// archiveEntry is what readEntry kept of a file of the archive: its bytes
// as stored in memory when small, else in a file, else (an uncompressed
// blob the node holds) nothing.
type archiveEntry struct {
	data []byte
	file string
}

// sniff tells the compression of a layer by its first bytes, and gzipped
// is the one of a gzip layer (the names this package's tests use).
func sniff(b []byte) imagearchive.Compression { return imagearchive.Sniff(b) }

const gzipped = imagearchive.Gzip

// readEntry keeps a file of the archive as it passes: in memory when
// small, else in a file, except an uncompressed blob the node holds, which
// it lets pass (imagearchive.Read still checks its digest).
func (a *archive) readEntry(e *imagearchive.Entry, have map[string]bool) (*archiveEntry, error) {
	ae := &archiveEntry{}
	switch {
	case e.Size <= a.small:
		b, err := io.ReadAll(e)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.Name, err)
		}
		ae.data = b
	case e.Compression == imagearchive.Uncompressed && e.BlobDigest() != "" && have[e.BlobDigest()]:
	default:
		a.n++
		f, err := os.Create(path.Join(a.tmp, fmt.Sprintf("entry-%d", a.n)))
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(f, e)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.Name, err)
		}
		ae.file = f.Name()
	}
	return ae, nil
}

// layer turns the entry of layer f into the uncompressed layer the node
// gets, kept only if the node lacks it. want is the diffID the config lists
// for it ("" when it lists none).
func (a *archive) layer(f imagearchive.File, e *archiveEntry, want string, have map[string]bool) (savedLayer, error) {
	switch f.Compression {
	case imagearchive.Zstd:
		return savedLayer{}, fmt.Errorf("%w: layer %s is zstd-compressed", errNotLegacyArchive, f.Name)
	case imagearchive.Uncompressed:
		l := savedLayer{digest: f.Digest, size: f.Size}
		if have[l.digest] {
			if e.file != "" {
				_ = os.Remove(e.file)
			}
		} else {
			l.file, l.data = e.file, e.data
		}
		return l, nil
	}
	// gzip: the diffID is the digest of the uncompressed tar.
	var src io.Reader
	if e.data != nil {
		src = bytes.NewReader(e.data)
	} else if e.file != "" {
		f, err := os.Open(e.file)
		if err != nil {
			return savedLayer{}, err
		}
		defer os.Remove(e.file)
		defer f.Close()
		src = f
	} else {
		return savedLayer{}, fmt.Errorf("%w: layer %s was not kept", errNotLegacyArchive, f.Name)
	}
	zr, err := imagearchive.Decompress(src)
	if err != nil {
		return savedLayer{}, fmt.Errorf("decompressing layer %s: %w", f.Name, err)
	}
	defer zr.Close()
	var w io.Writer = io.Discard
	var out *os.File
	if want == "" || !have[want] {
		a.n++
		if out, err = os.Create(path.Join(a.tmp, fmt.Sprintf("entry-%d", a.n))); err != nil {
			return savedLayer{}, err
		}
		w = out
	}
	hsh := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, hsh), zr)
	if out != nil {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return savedLayer{}, fmt.Errorf("decompressing layer %s: %w", f.Name, err)
	}
	l := savedLayer{digest: "sha256:" + hex.EncodeToString(hsh.Sum(nil)), size: n}
	if want != "" && l.digest != want {
		return savedLayer{}, fmt.Errorf("reading the saved image: layer %s uncompresses to digest %s, its config says %s", f.Name, l.digest, want)
	}
	if out != nil {
		if have[l.digest] {
			_ = os.Remove(out.Name())
		} else {
			l.file = out.Name()
		}
	}
	return l, nil
}

// writeOCI writes the image as an OCI layout archive holding the config, the
// manifest and only the layers read into files. containerd imports it and
// finds the other layers in its content store.
func (s *savedImage) writeOCI(w io.Writer, name string) error {
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(h[:]) }
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: sum(s.config), Size: int64(len(s.config))}}
	for _, l := range s.layers {
		m.Layers = append(m.Layers, desc{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: l.digest, Size: l.size})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tag := name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []desc{{MediaType: m.MediaType, Digest: sum(mb), Size: int64(len(mb)),
			Annotations: map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}},
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add(blob(m.Config.Digest), s.config); err != nil {
		return err
	}
	written := map[string]bool{} // a layer listed twice is one blob
	for _, l := range s.layers {
		if written[l.digest] {
			continue
		}
		if l.data != nil || l.file != "" {
			written[l.digest] = true
		}
		if l.data != nil {
			if err := add(blob(l.digest), l.data); err != nil {
				return err
			}
			continue
		}
		if l.file == "" {
			continue
		}
		f, err := os.Open(l.file)
		if err != nil {
			return err
		}
		err = tw.WriteHeader(&tar.Header{Name: blob(l.digest), Mode: 0o644, Size: l.size})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	if err := add(blob(sum(mb)), mb); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	return tw.Close()
}

// loadLayers loads ref into node n sending only the layers n lacks. It
// returns errNotLegacyArchive (wrapped) when it cannot take Docker's archive
// apart, so the caller can fall back to a full load.
func loadLayers(ctx context.Context, docker *client.Client, n nodes.Node, ref string) (sent, total int, err error) {
	have, err := nodeBlobs(n)
	if err != nil {
		return 0, 0, err
	}
	rc, err := docker.ImageSave(ctx, []string{ref})
	if err != nil {
		return 0, 0, fmt.Errorf("saving image %s from Docker: %w", ref, err)
	}
	saved, err := readSaved(rc, have)
	_ = rc.Close()
	if err != nil {
		return 0, 0, err
	}
	defer saved.cleanup()
	for _, l := range saved.layers {
		if l.file != "" || l.data != nil {
			sent++
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(saved.writeOCI(pw, ref)) }()
	err = nodeutils.LoadImageArchive(n, pr)
	_ = pr.CloseWithError(err)
	if err != nil {
		return 0, 0, fmt.Errorf("loading image %s into node %s: %w", ref, n.String(), err)
	}
	return sent, len(saved.layers), nil
}

// ImageParts is an image given as its config and uncompressed layers, as
// devenv assembles them (internal/build), so it can be loaded without
// `docker save`.
type ImageParts struct {
	Config []byte
	Layers []LayerPart // in order, base first
}

// LayerPart is one uncompressed layer. Data is nil for a layer the nodes
// are expected to hold already (a base image's).
type LayerPart struct {
	DiffID string
	Size   int64
	Data   []byte
}

// ErrMissingLayers means a node lacks a layer that LoadParts was given
// without data: load the image from Docker (LoadImage) instead.
var ErrMissingLayers = errors.New("a node lacks a base layer")

// LoadParts loads the image ref, given as parts, into every node, sending
// each node only the layers it lacks. It skips the checks and the `docker
// save` of LoadImage: the caller knows the image is new. It returns an error
// wrapping ErrMissingLayers, having loaded nothing, when a node lacks a
// layer given without data.
func (c *Cluster) LoadParts(ctx context.Context, docker *client.Client, ref string, parts ImageParts) error {
	t0 := time.Now()
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	if err := c.prepareParts(ctx, docker); err != nil {
		return err
	}
	err := c.loadParts(ref, parts, false)
	if err != nil && !errors.Is(err, ErrMissingLayers) {
		// What the nodes hold may have changed (garbage collection): ask
		// them again and retry once.
		c.log.Debugf("LoadParts: %v; asking the nodes what they hold and retrying", err)
		err = c.loadParts(ref, parts, true)
	}
	c.log.Debugf("LoadParts: %s loaded in %s", ref, time.Since(t0).Round(time.Millisecond))
	return err
}

// PrepareLoads looks up, ahead of the first LoadParts, what LoadParts
// needs to know about the nodes (their list, snapshotter and blobs), so the
// first save after `up` does not pay for it.
func (c *Cluster) PrepareLoads(ctx context.Context, docker *client.Client) error {
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	if err := c.prepareParts(ctx, docker); err != nil {
		return err
	}
	for _, n := range c.parts.nodes {
		if _, err := c.parts.blobs(n, false); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) prepareParts(ctx context.Context, docker *client.Client) error {
	if c.parts == nil {
		// A provider of its own: PrepareLoads runs beside LoadImage.
		list, err := newProvider(c.log).ListInternalNodes(c.Name)
		if err != nil {
			return fmt.Errorf("listing nodes of cluster %q: %w", c.Name, err)
		}
		if len(list) == 0 {
			return fmt.Errorf("cluster %q has no nodes: create it with `devenv up`", c.Name)
		}
		node, err := docker.ContainerInspect(ctx, list[0].String(), client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspecting node %s: %w", list[0].String(), err)
		}
		if _, err := ensurePrivileged(ctx, docker, node.Container.Config.Image, c.log); err != nil {
			return err
		}
		st := &partsState{nodes: list, have: map[string]map[string]bool{}, snapshotter: map[string]string{}}
		for _, n := range list {
			snap, err := snapshotter(n)
			if err != nil {
				return err
			}
			st.snapshotter[n.String()] = snap
		}
		c.parts = st
	}
	return nil
}

// partsState is what LoadParts remembers between calls: the nodes, each
// node's containerd snapshotter, and the blobs each node is known to hold
// (listed once, then kept up to date with what LoadParts sends).
type partsState struct {
	nodes       []nodes.Node
	snapshotter map[string]string
	have        map[string]map[string]bool
}

// blobs returns the blobs node n holds: listed the first time (or when
// refresh is set), remembered after that.
func (st *partsState) blobs(n nodes.Node, refresh bool) (map[string]bool, error) {
	have := st.have[n.String()]
	if have != nil && !refresh {
		return have, nil
	}
	have, err := nodeBlobs(n)
	if err != nil {
		return nil, err
	}
	st.have[n.String()] = have
	return have, nil
}

func (c *Cluster) loadParts(ref string, parts ImageParts, refresh bool) error {
	st := c.parts
	images := make([]*savedImage, len(st.nodes))
	for i, n := range st.nodes {
		have, err := st.blobs(n, refresh)
		if err != nil {
			return err
		}
		s := &savedImage{config: parts.Config}
		for _, l := range parts.Layers {
			sl := savedLayer{digest: l.DiffID, size: l.Size}
			switch {
			case have[l.DiffID]:
			case l.Data == nil:
				return fmt.Errorf("%w: node %s has no layer %s of %s", ErrMissingLayers, n.String(), shortID(l.DiffID), ref)
			default:
				sl.data = l.Data
			}
			s.layers = append(s.layers, sl)
		}
		images[i] = s
	}
	for i, n := range st.nodes {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(images[i].writeOCI(pw, ref)) }()
		var stderr bytes.Buffer
		err := n.Command("ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--digests",
			"--snapshotter="+st.snapshotter[n.String()], "-").SetStdin(pr).SetStderr(&stderr).Run()
		_ = pr.CloseWithError(err)
		if err != nil {
			delete(st.have, n.String())
			return fmt.Errorf("loading image %s into node %s: %w: %s", ref, n.String(), err, strings.TrimSpace(stderr.String()))
		}
		for _, l := range parts.Layers {
			st.have[n.String()][l.DiffID] = true
		}
	}
	return nil
}

// snapshotter returns the snapshotter the node's CRI plugin uses, which
// images must be unpacked for (what kind's own image loader looks up).
func snapshotter(n nodes.Node) (string, error) {
	var out bytes.Buffer
	if err := n.Command("containerd", "config", "dump").SetStdout(&out).Run(); err != nil {
		return "", fmt.Errorf("reading the containerd configuration of node %s: %w", n.String(), err)
	}
	return criSnapshotter(out.String()), nil
}

// criSnapshotter finds the CRI plugin's snapshotter in a containerd
// configuration (version 2 or 3); "overlayfs", containerd's default, when
// it names none.
func criSnapshotter(config string) string {
	section := ""
	for _, line := range strings.Split(config, "\n") {
		line = strings.ReplaceAll(strings.TrimSpace(line), "'", `"`)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "snapshotter" {
			continue
		}
		if section == `[plugins."io.containerd.cri.v1.images"]` || section == `[plugins."io.containerd.grpc.v1.cri".containerd]` {
			if v = strings.Trim(strings.TrimSpace(v), `"`); v != "" {
				return v
			}
		}
	}
	return "overlayfs"
}
