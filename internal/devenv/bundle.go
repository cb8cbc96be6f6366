package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

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
)

// WantedImage is an image a project needs, as devenv.yaml and the
// Dockerfiles name it.
type WantedImage struct {
	Role    string // RoleNode, RoleKafka, RoleH2, RoleBase or RoleService
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
// included). An image that is not present fails the whole call before any
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
