package build

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/internal/log"
)

// ImageOptions tune Image.
type ImageOptions struct {
	ContextOptions
	// Output, when set, receives the build's output as it comes, each line
	// prefixed with "[service] " (pass the logger's writer with -v).
	Output io.Writer
	// NoCache disables the engine's layer cache.
	NoCache bool
	// Engine makes the engine's builder build every image; otherwise
	// simple Dockerfiles are assembled by devenv (see Image).
	Engine bool
	// Background lets an assembled image's load into Docker run after
	// Image returns (see Result.DockerLoaded): the caller can load its
	// parts into the cluster meanwhile.
	Background bool
	// Live puts devenv's supervisor into assembled images as their first
	// process, so that running containers can take new files without a
	// restart of the container (see LiveDiff). When devenv carries no
	// supervisor for the image's architecture (the base image's, else the
	// engine's; see internal/supervise) the image is assembled without it
	// and Result.NoLive says why.
	Live bool
	// State, when set, remembers for each assembled image a fingerprint of
	// its inputs (file paths, sizes, modes and modification times, the
	// Dockerfile, the build args, the base image's ID), read without
	// reading any file's content. An assembled image's own layers then go
	// to files in State.LayerDir (see Assembled.Store) instead of memory.
	State *State
	// Quick lets Image, when State's fingerprint is unchanged and Docker
	// still has the image, return that image at once (Cached, with no
	// Assembled): no context is read or packed. Callers that need the
	// assembled parts (live updates) leave it off.
	Quick bool
	// Changed, when not nil, names the context paths (relative to the
	// context, slash-separated) that changed since the previous build of
	// the service with the same State, as a file watcher reported them:
	// an assembled image is then built from those paths only, the rest
	// taken from that build (see contextCache for what is guaranteed).
	// nil (or no State) looks at every path, reading the files whose
	// size, mode or modification time changed.
	Changed []string
}

// Result is a built image.
type Result struct {
	// Ref is devenv.local/<project>-<service>:<first 12 hex digits of ID>.
	Ref string
	// ID is the image ID ("sha256:...").
	ID string
	// Cached is set when Ref already named this image before the build:
	// nothing changed, nothing to deploy.
	Cached bool
	// ContextDigest is the digest of the build context: of its paths, their
	// types, permissions and contents, and of the Dockerfile (the same
	// files give the same digest, however the build read them); empty
	// when nothing was built (Quick).
	ContextDigest string
	Duration      time.Duration
	// Assembled is the image's parts when devenv assembled it itself (nil
	// when the engine built it), for loading it without `docker save`.
	Assembled *Assembled
	// NoLive says why an image asked for with ImageOptions.Live has no
	// supervisor ("" when it has one, or was not asked for).
	NoLive string

	loaded func() error
}

// DockerLoaded waits until the image is in Docker (it may still be loading
// with ImageOptions.Background) and returns what the load returned.
func (r Result) DockerLoaded() error {
	if r.loaded == nil {
		return nil
	}
	return r.loaded()
}

// Registry is the registry part of every service image's name.
const Registry = "devenv.local"

// tailLines is how many lines of output a build error carries.
const tailLines = 20

// Image builds the service's image and tags it from its content. A failed
// build returns an error naming the service, with the last lines of the
// build output.
//
// A simple Dockerfile (one FROM of an image Docker has, or scratch,
// followed only by COPY without flags, ENV, LABEL, WORKDIR, USER, EXPOSE,
// ENTRYPOINT and CMD) is assembled by devenv itself, as ko and jib do: one
// layer per COPY on top of the base image's layers, loaded into Docker with
// only the new layers. That takes a fraction of the engine's build, and the
// same inputs give the same image ID. Any other Dockerfile goes to the
// engine's builder through the Docker API: BuildKit when the engine offers
// it, else the legacy builder (see chooseBuilder).
//
// With a nil docker, a FROM-scratch simple Dockerfile is assembled and
// returned without going anywhere (tests measure the assembly this way);
// anything else fails.
//
// A context file that is being written while it is read (fewer bytes than
// its stat said: an editor truncates, then writes) makes Image read the
// context again, up to changedReadTries times in all; after that the error
// wraps ErrChangedWhileRead.
func Image(ctx context.Context, docker *client.Client, spec Spec, opts ImageOptions) (Result, error) {
	for try := 1; ; try++ {
		res, err := image(ctx, docker, spec, opts)
		if !errors.Is(err, ErrChangedWhileRead) || try == changedReadTries || ctx.Err() != nil {
			return res, err
		}
		time.Sleep(changedReadPause) // the writer is likely done then
	}
}

// changedReadTries and changedReadPause bound Image's reads of a context
// whose files are being written.
const (
	changedReadTries = 3
	changedReadPause = 100 * time.Millisecond
)

// image is Image, once.
func image(ctx context.Context, docker *client.Client, spec Spec, opts ImageOptions) (Result, error) {
	start := time.Now()
	repo, err := RepositoryIn(spec.Registry, spec.Project, spec.Service)
	if err != nil {
		return Result{}, err
	}
	// The recipe and the fingerprint come first: on an unchanged service
	// they answer without reading the context.
	simple := !opts.Engine && !opts.NoCache && !assemblyRefused.Load()
	var r *recipe
	var rerr error
	key := ""
	var scanned *contextCache
	var dfBytes []byte
	if simple {
		r, rerr = recipeOf(spec, opts.ContextOptions)
		if rerr != nil && !errors.Is(rerr, errNotSimple) {
			// A missing context or Dockerfile: say which and what to do,
			// as the engine's path does.
			if err := spec.checkContext(); err != nil {
				return Result{}, err
			}
			if _, _, err := dockerfileOf(spec, opts.ContextOptions); err != nil {
				return Result{}, err
			}
		}
		if rerr == nil {
			if err := spec.checkContext(); err != nil {
				return Result{}, err
			}
			var dfName string
			if dfBytes, dfName, err = dockerfileOf(spec, opts.ContextOptions); err != nil {
				return Result{}, err
			}
			scanned = opts.State.contextCache(spec.Service)
			scanned.mu.Lock()
			defer scanned.mu.Unlock()
			scanned.walked = opts.State.takeWalk(spec.Service)
			if err := scanned.update(spec, dfName, opts.Changed); err != nil {
				return Result{}, err
			}
		}
		if rerr == nil && opts.State != nil {
			var quick Result
			var ok bool
			if quick, key, ok = quickImage(ctx, docker, spec, opts, r, scanned); ok {
				quick.Duration = time.Since(start)
				return quick, nil
			}
		}
	}
	labels := map[string]string{LabelProject: spec.Project, LabelService: spec.Service}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	if simple {
		err := rerr
		if err == nil {
			var a *Assembled
			noLive := ""
			in := assembleInput{cache: scanned, dfBytes: dfBytes, layerDir: opts.State.LayerDir(), chunks: map[[sha256.Size]byte]*chunk{}}
			a, err = assemble(ctx, docker, spec, r, in, labels, opts.Live, opts.State)
			if errors.Is(err, errNoLive) {
				noLive = err.Error()
				a, err = assemble(ctx, docker, spec, r, in, labels, false, opts.State)
			}
			digest := ""
			if err == nil {
				digest, err = scanned.digest(spec, dfBytes)
			}
			if err == nil {
				// The next build takes what it can from this image's layers.
				if !sameKeys(scanned.chunks, in.chunks) {
					scanned.gen++
				}
				scanned.chunks = in.chunks
				scanned.commitMemo(a.memo)
				a.memo = nil
				if dir := opts.State.LayerDir(); dir != "" {
					// The layers go to files: a watch loop that keeps a few
					// images per service holds their indexes, not their bytes.
					if err := a.Store(dir); err != nil {
						return Result{}, fmt.Errorf("service %q: %w", spec.Service, err)
					}
				}
				res, lerr := tagAssembled(ctx, docker, spec, repo, a, opts.Background, opts.State)
				res.ContextDigest, res.Duration, res.NoLive = digest, time.Since(start), noLive
				if lerr == nil && key != "" {
					// Best effort: without it the next build reads the context.
					_ = opts.State.setImage(spec.Service, ImageMemo{Key: key, Ref: res.Ref, ID: res.ID})
				}
				if lerr == nil || ctx.Err() != nil {
					return res, lerr
				}
				// An engine that does not take an archive without the base's
				// layers (e.g. one with the containerd image store): the
				// engine's builder from now on.
				assemblyRefused.Store(true)
				err = fmt.Errorf("%w: %v", errNotSimple, lerr)
			}
		}
		if !errors.Is(err, errNotSimple) {
			return Result{}, fmt.Errorf("service %q: %w", spec.Service, err)
		}
		if opts.Output != nil {
			fmt.Fprintf(opts.Output, "[%s] image %v\n", spec.Service, err)
		}
	}
	if docker == nil {
		return Result{}, fmt.Errorf("service %q: building %s needs a Docker engine", spec.Service, spec.dockerfile())
	}
	data, dfName, _, err := buildContext(spec, opts.ContextOptions)
	if err != nil {
		return Result{}, err
	}
	digest, err := contextDigestOfTar(data, dfName)
	if err != nil {
		return Result{}, fmt.Errorf("service %q: %w", spec.Service, err)
	}
	args := make(map[string]*string, len(spec.Args))
	for k, v := range spec.Args {
		args[k] = &v
	}
	var out io.Writer = io.Discard
	if opts.Output != nil {
		pw := log.NewPrefixWriter(opts.Output, "["+spec.Service+"] ")
		defer pw.Flush()
		out = pw
	}
	df, _, err := dockerfileOf(spec, opts.ContextOptions)
	if err != nil {
		return Result{}, err
	}
	eb := engineBuild{spec: spec, data: data, dfName: dfName, df: df, args: args, labels: labels, noCache: opts.NoCache, out: out}
	id, err := eb.run(ctx, docker, builderFor(ctx, docker))
	if err != nil {
		return Result{}, fmt.Errorf("service %q: image build failed: %w", spec.Service, err)
	}
	ref := contentRef(repo, id)
	res := Result{Ref: ref, ID: id, ContextDigest: digest}
	if res.Cached, err = tagged(ctx, docker, spec, ref, id); err != nil {
		return Result{}, err
	}
	if !res.Cached {
		if _, err := docker.ImageTag(ctx, client.ImageTagOptions{Source: id, Target: ref}); err != nil {
			return Result{}, fmt.Errorf("service %q: tagging %s: %w", spec.Service, ref, err)
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// contentRef is the tag of image id: the repository and the first 12 hex
// digits of the ID.
func contentRef(repo, id string) string {
	return repo + ":" + strings.TrimPrefix(id, "sha256:")[:12]
}

// tagged reports whether ref already names image id in Docker.
func tagged(ctx context.Context, docker *client.Client, spec Spec, ref, id string) (bool, error) {
	existing, err := docker.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return existing.ID == id, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("service %q: inspecting %s: %w", spec.Service, ref, err)
}

// assemblyRefused is set when the engine refused an assembled image: every
// later build in the process uses the engine's builder.
var assemblyRefused atomic.Bool

// tagAssembled loads an assembled image into Docker under its
// content-derived tag, unless Docker has it already.
func tagAssembled(ctx context.Context, docker *client.Client, spec Spec, repo string, a *Assembled, background bool, state *State) (Result, error) {
	id := a.ID()
	ref := contentRef(repo, id)
	res := Result{Ref: ref, ID: id, Assembled: a}
	if docker == nil {
		return res, nil // assembled only (see Image)
	}
	cached, err := tagged(ctx, docker, spec, ref, id)
	if err != nil || cached {
		if cached {
			state.setDockerHas(a.chainIDs(), true) // its layers are there
		}
		res.Cached = cached
		return res, err
	}
	load := func() error {
		if err := a.loadIntoDocker(ctx, docker, ref, state); err != nil {
			return fmt.Errorf("service %q: loading the assembled image %s into Docker: %w", spec.Service, ref, err)
		}
		return nil
	}
	if !background {
		return res, load()
	}
	done := make(chan error, 1)
	go func() { done <- load() }()
	res.loaded = sync.OnceValue(func() error { return <-done })
	return res, nil
}

var nameInvalid = regexp.MustCompile(`[^a-z0-9]+`)

// Repository returns the image repository of a service,
// devenv.local/<project>-<service>, lower-cased with other characters
// replaced by "-".
func Repository(project, service string) (string, error) {
	return RepositoryIn("", project, service)
}

// RepositoryIn is Repository in registry (HOST[:PORT][/PREFIX]) instead of
// devenv.local; "" means devenv.local.
func RepositoryIn(registry, project, service string) (string, error) {
	if registry == "" {
		registry = Registry
	}
	clean := func(s string) string { return strings.Trim(nameInvalid.ReplaceAllString(strings.ToLower(s), "-"), "-") }
	p, s := clean(project), clean(service)
	if p == "" || s == "" {
		return "", fmt.Errorf("image name needs a project and a service name (got project %q, service %q)", project, service)
	}
	return strings.TrimSuffix(registry, "/") + "/" + p + "-" + s, nil
}

// readBuildStream copies the build output to out and returns the image ID.
// An error message in the stream becomes an error carrying the last lines.
func readBuildStream(r io.Reader, out io.Writer) (string, error) {
	return readBuild(r, out, stepLines{})
}
