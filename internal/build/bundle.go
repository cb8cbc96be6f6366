package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/client"
)

// LabelBundle is the label of a bundle's record image: the JSON of a
// BundleRecord.
const LabelBundle = "devenv.dev/bundle"

// BundleRecord is what a bundle says of the service images it holds, so
// that a machine without a prebuild's toolchain can use them while the
// sources are the ones they were built from.
type BundleRecord struct {
	Project string `json:"project"`
	// Services maps a service (one with a prebuild) to its image.
	Services map[string]BundledService `json:"services"`
}

// BundledService is one service image of a bundle.
type BundledService struct {
	// Sources is the SourcesHash of the sources the image was built from.
	Sources string `json:"sources"`
	// Ref is the image as the bundle holds it.
	Ref string `json:"ref"`
}

// WriteBundleRecord puts rec into Docker as a small image (one empty layer;
// the record is its LabelBundle label), devenv.local/bundle/<project>:<first
// 12 hex digits of the record's hash>, and returns its reference: saved into
// a bundle, it comes with the bundle through docker load. An image of the
// same record already in Docker is kept.
func WriteBundleRecord(ctx context.Context, docker *client.Client, rec BundleRecord) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("writing the bundle record: %w", err)
	}
	sum := sha256.Sum256(b)
	name := strings.Trim(nameInvalid.ReplaceAllString(strings.ToLower(rec.Project), "-"), "-")
	if name == "" {
		return "", fmt.Errorf("writing the bundle record: no project name")
	}
	ref := Registry + "/bundle/" + name + ":" + hex.EncodeToString(sum[:6])
	if _, err := docker.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("writing the bundle record: inspecting %s: %w", ref, err)
	}
	arch, err := engineArch(ctx, docker)
	if err != nil {
		return "", fmt.Errorf("writing the bundle record: %w", err)
	}
	var empty bytes.Buffer
	if err := tar.NewWriter(&empty).Close(); err != nil {
		return "", err
	}
	layer := empty.Bytes()
	diffID := sha256.Sum256(layer)
	cfg := imageConfig{Architecture: arch, OS: "linux"}
	cfg.Config = dockerspec.DockerOCIImageConfig{}
	cfg.Config.Labels = map[string]string{LabelBundle: string(b), LabelProject: rec.Project}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{"sha256:" + hex.EncodeToString(diffID[:])}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("writing the bundle record: %w", err)
	}
	a := &Assembled{Config: cb, Layers: []Layer{{DiffID: cfg.RootFS.DiffIDs[0], Size: int64(len(layer)), Data: layer}}}
	if err := a.loadIntoDocker(ctx, docker, ref, nil); err != nil {
		return "", fmt.Errorf("writing the bundle record %s into Docker: %w", ref, err)
	}
	return ref, nil
}

// BundleRecords returns the records of project's bundles that Docker holds
// (images loaded from bundles, or written by WriteBundleRecord), in no
// particular order. A record that does not parse is left out.
func BundleRecords(ctx context.Context, docker *client.Client, project string) ([]BundleRecord, error) {
	list, err := docker.ImageList(ctx, client.ImageListOptions{
		Filters: client.Filters{}.Add("label", LabelBundle).Add("label", LabelProject+"="+project),
	})
	if err != nil {
		return nil, fmt.Errorf("listing the bundles of %s in Docker: %w", project, err)
	}
	var out []BundleRecord
	for _, img := range list.Items {
		var rec BundleRecord
		if json.Unmarshal([]byte(img.Labels[LabelBundle]), &rec) != nil || rec.Project != project {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// UseBundled returns the reference under which spec's service runs the
// bundled image ref: ref itself when it is in the repository spec names
// its images in, else ref's tag in that repository, tagged now. present is
// false (and nothing is tagged) when Docker does not hold ref.
func UseBundled(ctx context.Context, docker *client.Client, spec Spec, ref string) (use string, present bool, err error) {
	img, err := docker.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("service %q: inspecting the bundled image %s: %w", spec.Service, ref, err)
	}
	repo, err := RepositoryIn(spec.Registry, spec.Project, spec.Service)
	if err != nil {
		return "", false, err
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") || ref[:i] == repo {
		return ref, true, nil
	}
	use = repo + ref[i:]
	if ok, err := tagged(ctx, docker, spec, use, img.ID); err != nil || ok {
		return use, true, err
	}
	if _, err := docker.ImageTag(ctx, client.ImageTagOptions{Source: img.ID, Target: use}); err != nil {
		return "", false, fmt.Errorf("service %q: tagging the bundled image %s as %s: %w", spec.Service, ref, use, err)
	}
	return use, true, nil
}

// Matching returns the images of service in records built from sources
// (see SourcesHash), each once, and whether any record has the service at
// all.
func Matching(records []BundleRecord, service, sources string) (refs []string, recorded bool) {
	for _, rec := range records {
		s, ok := rec.Services[service]
		if !ok {
			continue
		}
		recorded = true
		if s.Sources == sources && !slices.Contains(refs, s.Ref) {
			refs = append(refs, s.Ref)
		}
	}
	return refs, recorded
}
