package devenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/registryx"
	"github.com/devenv-tool/devenv/registry"
)

// registryOps is the loop's loader when devenv.yaml has registry: images go
// to the registry (only the blobs it lacks) and the nodes pull them from
// there; the rest of the cluster work is clusterOps'.
type registryOps struct {
	clusterOps
	src  *registryx.Source
	push registry.PushOptions
	log  *log.Logger
	// local is registry: local's host (localhost:PORT): images keep their
	// devenv.local names, which the nodes pull from the registry
	// container, and go to host under the same path. "" otherwise: images
	// are named in the registry already.
	local string
}

// target is where ref is pushed.
func (o registryOps) target(ref string) string {
	if o.local != "" {
		if rest, ok := strings.CutPrefix(ref, build.Registry+"/"); ok {
			return o.local + "/" + rest
		}
	}
	return ref
}

func newRegistryOps(ops clusterOps, cfg *config.Config, state *build.State, lg *log.Logger) registryOps {
	dir := ""
	if state != nil && state.LayerDir() != "" {
		dir = filepath.Join(filepath.Dir(state.LayerDir()), "registry")
	}
	o := registryOps{
		clusterOps: ops,
		src:        &registryx.Source{Docker: ops.docker, Dir: dir},
		push:       registry.PushOptions{Log: lg.Slog(), Insecure: cfg.Registry.PlainHTTP()},
		log:        lg,
	}
	if cfg.Registry.Local {
		o.local = cfg.Registry.Host
	}
	return o
}

// registryPrefix is what images are named under in cfg's registry:
// HOST[:PORT][/PREFIX]; "" without one, and for registry: local, whose
// images keep their devenv.local names (the port of the local registry is
// this machine's: a bundle or another laptop gets another one).
func registryPrefix(cfg *config.Config) string {
	if cfg.Registry == nil || cfg.Registry.Local {
		return ""
	}
	if cfg.Registry.Prefix != "" {
		return cfg.Registry.Host + "/" + cfg.Registry.Prefix
	}
	return cfg.Registry.Host
}

// MissingImages asks the registry for each ref's tag: content tags, so a
// tag it holds is the image. registry.Present asks for access once and
// then only for the manifests' heads, several at a time: a warm up of many
// services waits for a few round trips, not a full lookup per service.
func (o registryOps) MissingImages(ctx context.Context, refs []string) ([]string, error) {
	targets := make([]string, len(refs))
	for i, ref := range refs {
		targets[i] = o.target(ref)
	}
	found, err := registry.Present(ctx, targets, o.push)
	if err != nil {
		return nil, err
	}
	var missing []string
	for i, ref := range refs {
		if !found[i] {
			missing = append(missing, ref)
		}
	}
	return missing, nil
}

// LoadImage pushes the engine's image ref.
func (o registryOps) LoadImage(ctx context.Context, ref string) (bool, error) {
	t0 := time.Now()
	res, err := o.src.PushEngine(ctx, ref, o.target(ref), o.push)
	if err != nil {
		return false, err
	}
	o.said(res, time.Since(t0))
	return res.Uploaded > 0 || res.Manifest, nil
}

// LoadParts pushes an image devenv assembled from its own layers (the base
// image's are read out of the engine only when the registry lacks one).
func (o registryOps) LoadParts(ctx context.Context, ref string, a *build.Assembled) error {
	t0 := time.Now()
	img, done, err := o.src.Assembled(ctx, a)
	if err != nil {
		return err
	}
	defer done()
	res, err := registry.Push(ctx, img, o.target(ref), o.push)
	if err != nil {
		return err
	}
	o.said(res, time.Since(t0))
	return nil
}

func (o registryOps) said(res registry.PushResult, d time.Duration) {
	o.log.Infof("pushed %s: %d blobs uploaded (%s), %d already there, in %s", res.Ref, res.Uploaded, sizeOf(res.UploadedBytes), res.Skipped, d.Round(10*time.Millisecond))
}

// sizeOf prints a byte count for people.
func sizeOf(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
