package imagearchive

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
)

// Image is one image of an archive.
type Image struct {
	// Names are the image's names: the RepoTags of manifest.json, or the
	// name an index gives it.
	Names []string
	// OS and Architecture are the platform an index names for it; "" when
	// it names none (manifest.json never does).
	OS, Architecture string
	// ConfigPath is the path of the image's config in the archive, and
	// Config its content: nil when the archive lacks it (a caller that
	// needs it says so).
	ConfigPath string
	Config     []byte
	// Layers are the image's layers, base first.
	Layers []Layer
}

// Layer is one layer of an image.
type Layer struct {
	// Path is the entry holding the layer (links followed): the name of
	// the Entry Read handed to its caller, and the key of Archive.File.
	Path string
	// DiffID is the digest of the uncompressed layer as the config lists
	// it; "" when the archive has no config or the config lists none.
	DiffID string
}

// imageRef is an image as the archive's manifest.json or index lists it,
// before its parts are looked up.
type imageRef struct {
	names            []string
	os, architecture string
	config           string
	layers           []string
}

// Images lists the images of the archive: as manifest.json (both formats
// write one) lists them, else as index.json leads to them (through nested
// indexes; image manifests of another platform that the archive does not
// hold, and attestations, are passed over). An image whose layers are not
// all in the archive is an error naming the missing one.
func (a *Archive) Images() ([]Image, error) {
	refs, _, err := a.list()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, r := range refs {
		img, err := a.image(r)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// One returns the archive's one image. Of several that an index leads to,
// it takes the only one for linux on this machine's architecture (the
// platform of the nodes devenv runs); several in manifest.json are an
// error.
func (a *Archive) One() (Image, error) {
	refs, from, err := a.list()
	if err != nil {
		return Image{}, err
	}
	switch {
	case len(refs) == 1:
		return a.image(refs[0])
	case from == "manifest.json":
		return Image{}, fmt.Errorf("manifest.json lists %d images, not one", len(refs))
	case len(refs) == 0:
		return Image{}, fmt.Errorf("%s leads to no image manifest in the archive", from)
	}
	var native []imageRef
	for _, r := range refs {
		if r.os == "linux" && r.architecture == runtime.GOARCH {
			native = append(native, r)
		}
	}
	if len(native) == 1 {
		return a.image(native[0])
	}
	return Image{}, fmt.Errorf("%s leads to %d image manifests", from, len(refs))
}

// list lists the images as manifest.json or index.json does, and says
// which.
func (a *Archive) list() ([]imageRef, string, error) {
	if a.has("manifest.json") {
		b, err := a.jsonAt("manifest.json")
		if err != nil {
			return nil, "", err
		}
		var manifest []struct {
			Config   string
			RepoTags []string
			Layers   []string
		}
		if err := json.Unmarshal(b, &manifest); err != nil {
			return nil, "", fmt.Errorf("reading manifest.json: %w", err)
		}
		var refs []imageRef
		for _, m := range manifest {
			refs = append(refs, imageRef{names: m.RepoTags, config: m.Config, layers: m.Layers})
		}
		return refs, "manifest.json", nil
	}
	if !a.has("index.json") {
		return nil, "", errors.New("the archive has neither manifest.json nor index.json")
	}
	var found []descriptor
	if err := a.manifests("index.json", nil, 0, &found); err != nil {
		return nil, "", err
	}
	var refs []imageRef
	byDigest := map[string]int{} // the same image under several names is one
	for _, d := range found {
		if i, ok := byDigest[d.Digest]; ok {
			for _, n := range d.names {
				if !slices.Contains(refs[i].names, n) {
					refs[i].names = append(refs[i].names, n)
				}
			}
			continue
		}
		b, err := a.jsonAt(BlobPath(d.Digest))
		if err != nil {
			return nil, "", err
		}
		var m struct {
			Config descriptor   `json:"config"`
			Layers []descriptor `json:"layers"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, "", fmt.Errorf("reading manifest %s: %w", d.Digest, err)
		}
		r := imageRef{names: d.names, config: BlobPath(m.Config.Digest)}
		if d.Platform != nil {
			r.os, r.architecture = d.Platform.OS, d.Platform.Architecture
		}
		for _, l := range m.Layers {
			r.layers = append(r.layers, BlobPath(l.Digest))
		}
		byDigest[d.Digest] = len(refs)
		refs = append(refs, r)
	}
	return refs, "index.json", nil
}

// descriptor is the part of an OCI descriptor Archive uses.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`

	names []string // the names it has, or the index leading to it has
}

// maxIndexDepth is how deep indexes may nest.
const maxIndexDepth = 4

// manifests appends to found the image manifests the index at p leads to
// (through nested indexes) whose blob the archive holds. names are the
// names the index leading to p gave it.
func (a *Archive) manifests(p string, names []string, depth int, found *[]descriptor) error {
	if depth > maxIndexDepth {
		return errors.New("indexes nested too deep")
	}
	b, err := a.jsonAt(p)
	if err != nil {
		return err
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	for _, d := range index.Manifests {
		if !a.has(BlobPath(d.Digest)) {
			continue // another platform's, not saved
		}
		d.names = names
		if n := d.Annotations["io.containerd.image.name"]; n != "" {
			d.names = []string{n}
		} else if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			d.names = []string{n}
		}
		switch d.MediaType {
		case "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json":
			if err := a.manifests(BlobPath(d.Digest), d.names, depth+1, found); err != nil {
				return err
			}
		case "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json":
			if d.Platform != nil && d.Platform.OS == "unknown" {
				continue // an attestation, not an image
			}
			*found = append(*found, d)
		}
	}
	return nil
}

// image looks up the parts of r: its config, when the archive holds it,
// and its layers, which it must.
func (a *Archive) image(r imageRef) (Image, error) {
	img := Image{Names: r.names, OS: r.os, Architecture: r.architecture, ConfigPath: r.config}
	var diffIDs []string
	if r.config != "" && a.has(r.config) {
		b, err := a.jsonAt(r.config)
		if err != nil {
			return Image{}, err
		}
		var config struct {
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
		if err := json.Unmarshal(b, &config); err != nil {
			return Image{}, fmt.Errorf("reading config %s: %w", r.config, err)
		}
		img.Config, diffIDs = b, config.RootFS.DiffIDs
	}
	if len(diffIDs) != 0 && len(diffIDs) != len(r.layers) {
		return Image{}, fmt.Errorf("the config lists %d layers, the manifest %d", len(diffIDs), len(r.layers))
	}
	for i, p := range r.layers {
		f, ok := a.File(p)
		if !ok {
			return Image{}, fmt.Errorf("the archive has no layer %s", p)
		}
		l := Layer{Path: f.Name}
		if len(diffIDs) != 0 {
			l.DiffID = diffIDs[i]
		}
		img.Layers = append(img.Layers, l)
	}
	return img, nil
}
