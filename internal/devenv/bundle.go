package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
)

// Roles of the images a bundle holds.
const (
	RoleNode     = "node"     // the kind node image
	RoleKafka    = "kafka"    // the Kafka broker
	RoleH2       = "h2"       // the H2 server
	RoleRegistry = "registry" // registry: local's container
	RoleBase     = "base"     // an image a service's Dockerfile starts FROM
	RoleService  = "service"  // a service's image, built by devenv
	RoleRecord   = "record"   // what the bundle says of its service images (build.BundleRecord)
)

// WantedImage is an image a project needs, as devenv.yaml and the
// Dockerfiles name it.
type WantedImage struct {
	Role    string // RoleNode, RoleKafka, RoleH2, RoleRegistry, RoleBase, RoleService or RoleRecord
	Ref     string // as named (for RoleService: the built image)
	Service string // the service a base or service image is for ("" otherwise)
}

// WantedImages lists every image cfg names: the node image, the Kafka and
// H2 images (when used), then the images the services' Dockerfiles start
// FROM (build args applied), each once, in that order. The service images
// themselves are not listed: they are built (see BundleImages).
func WantedImages(cfg *config.Config) ([]WantedImage, error) {
	cfg = effective(cfg)
	var out []WantedImage
	if !existing(cfg) { // devenv creates no cluster on cluster.context
		out = append(out, WantedImage{Role: RoleNode, Ref: cfg.Cluster.Image})
	}
	if cfg.Kafka != nil && !externalKafka(cfg) {
		out = append(out, WantedImage{Role: RoleKafka, Ref: cfg.Kafka.Image})
	}
	if cfg.Registry != nil && cfg.Registry.Local {
		out = append(out, WantedImage{Role: RoleRegistry, Ref: LocalRegistryImage})
	}
	if cfg.H2.Mode == config.H2Server && !externalH2(cfg) {
		out = append(out, WantedImage{Role: RoleH2, Ref: cfg.H2.Image})
	}
	for _, s := range cfg.Services {
		df, err := os.ReadFile(s.Dockerfile)
		if err != nil {
			return nil, fmt.Errorf("reading the Dockerfile of service %s: %w", s.Name, err)
		}
		record := func(ref string) (string, error) {
			if !slices.ContainsFunc(out, func(w WantedImage) bool { return w.Ref == ref }) {
				out = append(out, WantedImage{Role: RoleBase, Ref: ref, Service: s.Name})
			}
			return ref, nil
		}
		if _, _, _, err := images.RewriteDockerfile(df, s.Args, record); err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	return out, nil
}

// BundledImage is an image BundleImages picked for a bundle.
type BundledImage struct {
	WantedImage
	// Local is the image in Docker that goes into the bundle: Ref itself,
	// or the stand-in used for it.
	Local   string
	StandIn bool
	// Built is set on a service image this call built (it was not current).
	Built bool
}

// ErrMissingImages is returned (wrapped, naming each image and how to get
// it) when an image the project needs is not present in Docker.
var ErrMissingImages = errors.New("images the project needs are not present")

// BundleImages returns every image a machine with no network needs to run
// cfg: the images WantedImages lists, as Docker has them (the reference
// itself, else its stand-in: the registry is never tried), then each
// service's image, built as Up builds it when it is not current (prebuild
// included), and last, when a service has a prebuild, the bundle's record
// (RoleRecord: each such service's image and the content hash of the
// sources it was built from, build.SourcesHash), with which up on a machine
// without the prebuild's toolchain uses the bundled image while the sources
// are these. An image that is not present fails the whole call before any
// build, with an error wrapping ErrMissingImages that names each one.
//
// It holds the project's lock shared: it waits for an Up that is changing
// the environment, and runs beside one that watches.
func BundleImages(ctx context.Context, cfg *config.Config, opts Options) ([]BundledImage, error) {
	lg := opts.logger()
	wanted, err := WantedImages(cfg)
	if err != nil {
		return nil, err
	}
	lk, err := lockProject(ctx, cfg, opts, "bundle", lockShared)
	if err != nil {
		return nil, err
	}
	defer lk.release()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer docker.Close()
	resolver := images.NewResolver(docker, lg)
	resolver.NoPull = true

	var out []BundledImage
	var missing []string
	for _, w := range wanted {
		res, err := resolver.Resolve(ctx, w.Ref)
		if errors.Is(err, images.ErrNoImage) {
			missing = append(missing, fmt.Sprintf("%s (%s)", strings.TrimPrefix(err.Error(), images.ErrNoImage.Error()+": "), what(w)))
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, BundledImage{WantedImage: w, Local: res.Ref, StandIn: res.StandIn})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w:\n  %s", ErrMissingImages, strings.Join(missing, "\n  "))
	}

	state, err := loadState(cfg)
	if err != nil {
		return nil, err
	}
	prog := &progress{log: lg}
	b := imageBuilder{project: cfg.Name, docker: docker, resolver: resolver, state: state, opts: opts, prog: prog}
	// What lets a machine without a prebuild's toolchain use the service
	// images while its sources are these (see imageBuilder.fromBundle).
	record := build.BundleRecord{Project: cfg.Name, Services: map[string]build.BundledService{}}
	for _, s := range cfg.Services {
		res, err := b.Build(ctx, s, buildOptions{Quick: true})
		if err != nil {
			return nil, err
		}
		if res.DockerLoaded != nil {
			if err := res.DockerLoaded(); err != nil {
				return nil, err
			}
		}
		out = append(out, BundledImage{
			WantedImage: WantedImage{Role: RoleService, Ref: res.Ref, Service: s.Name},
			Local:       res.Ref,
			Built:       !res.Cached,
		})
		if len(s.Prebuild) > 0 {
			sources, err := build.SourcesHash(b.spec(s))
			if err != nil {
				return nil, err
			}
			record.Services[s.Name] = build.BundledService{Sources: sources, Ref: res.Ref}
		}
	}
	if len(record.Services) > 0 {
		ref, err := build.WriteBundleRecord(ctx, docker, record)
		if err != nil {
			return nil, err
		}
		out = append(out, BundledImage{WantedImage: WantedImage{Role: RoleRecord, Ref: ref}, Local: ref})
	}
	return out, nil
}

// what says what a wanted image is for, in the words of devenv.yaml.
func what(w WantedImage) string {
	switch w.Role {
	case RoleNode:
		return "cluster.image"
	case RoleKafka:
		return "kafka.image"
	case RoleH2:
		return "h2.image"
	case RoleRegistry:
		return "registry: local"
	case RoleBase:
		return "FROM in the Dockerfile of service " + w.Service
	}
	return "service " + w.Service
}

// bundleFacts is what fromBundle found for a service whose prebuild would
// run: what decideBundled decides on.
type bundleFacts struct {
	Service string
	Command string // the prebuild command line
	// Tool is the program the prebuild needs (build.Toolchain);
	// ToolFound is set when it is on PATH.
	Tool      string
	ToolFound bool
	// Recorded is set when a bundle loaded into Docker has a record of
	// the service; Matching are the images such records hold of the
	// sources as they are.
	Recorded bool
	Matching []string
	// Present is the first of Matching that Docker holds, as the service
	// names it; "" for none.
	Present string
}

// decideBundled returns the bundled image a service uses instead of running
// its prebuild, or "" when the prebuild runs as always (its toolchain is
// there). Without the toolchain, the image must be one a loaded bundle made
// from these sources and Docker must hold it; otherwise the error says
// what is missing and what to do.
func decideBundled(f bundleFacts) (string, error) {
	if f.ToolFound || f.Tool == "" {
		return "", nil
	}
	needs := fmt.Sprintf("`%s` needs %s, which is not installed here", f.Command, f.Tool)
	install := installWhat(f.Tool)
	switch {
	case !f.Recorded:
		return "", fmt.Errorf("%s, and no bundle loaded into Docker holds an image of %s: install %s, or load a bundle made from these sources (devenv images load FILE)",
			needs, f.Service, install)
	case len(f.Matching) == 0:
		return "", fmt.Errorf("%s, and the sources of %s are not those a loaded bundle's image was built from (they changed since `devenv bundle`, or the bundle is of another version): install %s, or load a bundle made from these sources (devenv images load FILE)",
			needs, f.Service, install)
	case f.Present == "":
		return "", fmt.Errorf("%s; a loaded bundle was made from these sources, but its image %s is not in Docker: load the bundle again (devenv images load FILE), or install %s",
			needs, f.Matching[0], install)
	}
	return f.Present, nil
}

// bundledNote is what up says once when a service uses its bundled image.
func bundledNote(f bundleFacts) string {
	return fmt.Sprintf("%s: `%s` is not installed: using the image from the bundle (its sources are unchanged); a saved change needs %s", f.Service, f.Tool, f.Tool)
}

// installWhat names what to install for a toolchain program.
func installWhat(tool string) string {
	switch tool {
	case "go":
		return "Go"
	case "javac":
		return "a JDK"
	}
	return tool
}
