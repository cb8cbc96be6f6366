package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a layer blob.
const (
	// MediaTypeLayer is an uncompressed layer tar: its blob digest is its
	// diffID, so a layer's digest is known without reading it.
	MediaTypeLayer = "application/vnd.oci.image.layer.v1.tar"
	// MediaTypeLayerGzip is a gzip-compressed layer tar.
	MediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Image is an image given as its parts: the config JSON and the layer blobs
// it lists, base first. The manifest Push writes is an OCI image manifest
// made of them.
type Image struct {
	// Config is the image config JSON (the image ID is its digest). Its
	// rootfs.diff_ids list one entry per layer.
	Config []byte
	Layers []Layer
}

// Layer is one layer blob of an Image.
type Layer struct {
	// Digest is sha256:<hex> of the blob as Open returns it: the diffID of
	// an uncompressed layer, the digest of the compressed bytes otherwise.
	Digest string
	// MediaType is the blob's media type; "" means MediaTypeLayer.
	MediaType string
	// Size is the blob's size in bytes, as Open returns it.
	Size int64
	// Open returns the blob. Push calls it only for a blob the registry
	// lacks, possibly from several goroutines at once (for different
	// layers).
	Open func() (io.ReadCloser, error)
}

// PushOptions are Push's dependencies and choices.
type PushOptions struct {
	// Log receives debug lines about each upload; nil: silent.
	Log *slog.Logger
	// Insecure allows plain HTTP to the registry (and only then). Set it for
	// a registry on this machine (localhost, a loopback address) or one the
	// user marked insecure; without it every request goes over HTTPS.
	Insecure bool
	// Transport is the HTTP transport to the registry; nil: the default
	// (proxy settings from the environment, HTTP/2).
	Transport http.RoundTripper
}

// PushResult says what a push sent.
type PushResult struct {
	// Ref is the reference pushed, and Digest the digest of its manifest
	// (ref@Digest names the image immutably).
	Ref    string
	Digest string
	// Uploaded counts the blobs (layers and the config) sent to the
	// registry, and UploadedBytes their bytes; Skipped counts those it had
	// already (or mounted from another repository).
	Uploaded      int
	UploadedBytes int64
	Skipped       int
	// Manifest is true when the manifest was written, false when the
	// registry held the tag at this manifest already (nothing was sent).
	Manifest bool
}

// ErrPlainHTTP means a request would have gone over plain HTTP while
// PushOptions.Insecure was not set.
var ErrPlainHTTP = errors.New("plain HTTP to the registry is not allowed")

// Push sends img to the registry as ref (HOST[:PORT]/REPOSITORY:TAG),
// uploading only the blobs the registry lacks, and tags it. A registry
// that holds ref at the same manifest already gets no upload at all.
// Errors name ref and the registry and say what to do.
func Push(ctx context.Context, img Image, ref string, opts PushOptions) (PushResult, error) {
	res := PushResult{Ref: ref}
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return res, err
	}
	im, err := newImage(img)
	if err != nil {
		return res, fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := im.Digest()
	if err != nil {
		return res, fmt.Errorf("pushing %s: %w", ref, err)
	}
	res.Digest = d.String()
	cd, err := im.ConfigName()
	if err != nil {
		return res, fmt.Errorf("pushing %s: %w", ref, err)
	}
	sizes := map[string]int64{cd.String(): int64(len(img.Config))}
	for _, l := range img.Layers {
		sizes[l.Digest] = l.Size
	}
	tr := &counter{base: opts.Transport, insecure: opts.Insecure, sizes: sizes, log: logger(opts.Log)}
	if tr.base == nil {
		tr.base = remote.DefaultTransport
	}
	err = remote.Write(r, im, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(tr))
	res.Uploaded, res.UploadedBytes, res.Manifest = tr.result()
	res.Skipped = len(sizes) - res.Uploaded
	if err != nil {
		return res, explain(ctx, "pushing "+ref, r.Context().RegistryStr(), err)
	}
	tr.log.Debug("pushed image", "ref", ref, "digest", res.Digest, "uploaded", res.Uploaded, "bytes", res.UploadedBytes, "skipped", res.Skipped, "manifest", res.Manifest)
	return res, nil
}

// ConfigDigest returns the digest of the config of the image ref names in
// its registry (which is the image ID), or "" when the registry has no such
// tag or it names an index. A caller that must read an image out of the
// Docker engine before pushing it asks this first.
func ConfigDigest(ctx context.Context, ref string, opts PushOptions) (string, error) {
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return "", err
	}
	tr := &counter{base: opts.Transport, insecure: opts.Insecure, log: logger(opts.Log)}
	if tr.base == nil {
		tr.base = remote.DefaultTransport
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(tr))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", explain(ctx, "looking up "+ref, r.Context().RegistryStr(), err)
	}
	if !desc.MediaType.IsImage() {
		return "", nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return "", fmt.Errorf("looking up %s: reading its manifest: %w", ref, err)
	}
	return m.Config.Digest.String(), nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func parseRef(ref string, insecure bool) (name.Reference, error) {
	var o []name.Option
	if insecure {
		o = append(o, name.Insecure)
	}
	r, err := name.ParseReference(ref, o...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	return r, nil
}

// image is an Image as go-containerregistry reads it.
type image struct {
	img          Image
	manifest     []byte
	configDigest v1.Hash
	layers       map[v1.Hash]Layer
}

func newImage(img Image) (v1.Image, error) {
	if len(img.Config) == 0 {
		return nil, errors.New("the image has no config")
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(img.Layers) {
		return nil, fmt.Errorf("the image config lists %d layers, the image has %d", len(cfg.RootFS.DiffIDs), len(img.Layers))
	}
	sum := sha256.Sum256(img.Config)
	im := &image{img: img, layers: map[v1.Hash]Layer{},
		configDigest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(img.Config)), Digest: im.configDigest},
		Layers:        []v1.Descriptor{},
	}
	for i, l := range img.Layers {
		h, err := v1.NewHash(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %d: digest %q: %w", i, l.Digest, err)
		}
		if l.MediaType == "" {
			l.MediaType = MediaTypeLayer
		}
		if l.MediaType == MediaTypeLayer && l.Digest != cfg.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("layer %d: an uncompressed layer's digest %s differs from its diffID %s in the config", i, l.Digest, cfg.RootFS.DiffIDs[i])
		}
		if l.Open == nil {
			return nil, fmt.Errorf("layer %d (%s): no Open", i, l.Digest)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("layer %d (%s): size %d", i, l.Digest, l.Size)
		}
		im.layers[h] = l
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: h})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	im.manifest = b
	return partial.CompressedToImage(im)
}

func (im *image) RawConfigFile() ([]byte, error)      { return im.img.Config, nil }
func (im *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (im *image) RawManifest() ([]byte, error)        { return im.manifest, nil }

func (im *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == im.configDigest {
		return partial.ConfigLayer(im)
	}
	l, ok := im.layers[h]
	if !ok {
		return nil, fmt.Errorf("the image has no blob %s", h)
	}
	return blob{l}, nil
}

// blob is a Layer as go-containerregistry reads it.
type blob struct{ l Layer }

func (b blob) Digest() (v1.Hash, error)            { return v1.NewHash(b.l.Digest) }
func (b blob) Compressed() (io.ReadCloser, error)  { return b.l.Open() }
func (b blob) Size() (int64, error)                { return b.l.Size, nil }
func (b blob) MediaType() (types.MediaType, error) { return types.MediaType(b.l.MediaType), nil }

// counter is the transport under go-containerregistry's: it refuses plain
// HTTP unless allowed, and counts the blob uploads and manifest writes that
// succeed.
type counter struct {
	base     http.RoundTripper
	insecure bool
	sizes    map[string]int64 // blob digest -> size
	log      *slog.Logger

	mu       sync.Mutex
	uploaded int
	bytes    int64
	manifest bool
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !c.insecure {
		return nil, fmt.Errorf("%w (%s)", ErrPlainHTTP, req.URL.Host)
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPut || resp.StatusCode != http.StatusCreated {
		return resp, err
	}
	switch p := req.URL.Path; {
	case strings.Contains(p, "/blobs/uploads/"):
		d := req.URL.Query().Get("digest")
		c.mu.Lock()
		c.uploaded++
		c.bytes += c.sizes[d]
		c.mu.Unlock()
		c.log.Debug("uploaded blob", "digest", d, "size", c.sizes[d])
	case strings.Contains(p, "/manifests/"):
		c.mu.Lock()
		c.manifest = true
		c.mu.Unlock()
	}
	return resp, nil
}

func (c *counter) result() (int, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uploaded, c.bytes, c.manifest
}
