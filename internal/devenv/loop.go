package devenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/internal/ui"
	"github.com/devenv-tool/devenv/watch"
)

// endpointCheckEvery is how often the loop checks that the external
// containers' endpoints still point at their current addresses.
const endpointCheckEvery = 2 * time.Second

// Watch runs the inner loop until ctx ends: it rebuilds and redeploys the
// services whose files change, re-applies the configuration when a config
// file changes, and re-points the endpoints when an external container's
// address changes. A failing build or rollout is reported and leaves the
// running version in place; the loop goes on. It returns nil when ctx ends
// (Ctrl-C): the environment keeps running.
//
// Watch turns Up's exclusive project lock into a shared one once it starts
// watching: tests may use the environment meanwhile, while another up or a
// down still waits for this one.
func (e *Env) Watch(ctx context.Context, configFiles []string) error {
	l := e.loop
	lg := l.log
	if err := e.lock.downgrade(ctx); err != nil {
		return err
	}
	w, err := newWatcher(l.cfg, configFiles)
	if err != nil {
		return err
	}
	defer func() { w.Close() }()
	l.watching = true
	go func() {
		// Ahead of the first save: what loading new layers needs to know.
		if err := e.prepareLoads(ctx); err != nil && ctx.Err() == nil {
			lg.Debugf("preparing image loads: %v", err)
		}
		if l.opts.Live {
			if err := e.Cluster.PrepareLiveUpdates(ctx, e.docker); err != nil && ctx.Err() == nil {
				lg.Debugf("preparing live updates: %v", err)
			}
		}
	}()
	defer func() { l.watching = false; l.waitDocker(nil); e.keepContexts() }()
	if e.opts.PodLogs != nil || e.opts.Observer != nil {
		names := make([]string, 0, len(e.Config.Services))
		for _, s := range e.Config.Services {
			names = append(names, s.Name)
		}
		logsCtx, stopLogs := context.WithCancel(ctx)
		defer stopLogs()
		lo := LogOptions{Follow: true, Color: e.opts.Color, Out: e.opts.PodLogs}
		if e.opts.Observer != nil {
			lo.Line = e.opts.Observer.Log
		}
		go streamLogs(logsCtx, e.Cluster, e.Config, names, lo)
	}
	// The environment's state for the Observer, every few seconds and
	// after each batch.
	var cfgNow atomic.Pointer[config.Config]
	cfgNow.Store(e.Config)
	kick := make(chan struct{}, 1)
	if e.opts.Observer != nil {
		statusCtx, stopStatus := context.WithCancel(ctx)
		reported := make(chan struct{})
		go func() {
			defer close(reported)
			e.reportStatus(statusCtx, &cfgNow, kick)
		}()
		// Before the Docker connection closes (Close).
		defer func() { stopStatus(); <-reported }()
	}
	stopForwards := e.startForwards(ctx) // the services' ports: on 127.0.0.1 while watching
	defer stopForwards()
	stopTests := e.startTests(ctx) // the declared tests, after each update
	defer stopTests()
	l.assembleKnown(ctx)
	lg.Infof("watching %d services for changes (Ctrl-C stops watching; the environment keeps running)", len(e.Config.Services))
	tick := time.NewTicker(endpointCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			lg.Infof("stopped watching; the environment keeps running (devenv down removes it)")
			return nil
		case err, ok := <-w.Errors():
			if ok {
				lg.Warnf("watching: %v", err)
			}
		case b, ok := <-w.Events():
			if !ok {
				return nil
			}
			restart := l.handle(ctx, b, configFiles)
			e.Config, e.LastApply = l.cfg, l.lastApply
			e.writeRecord()
			cfgNow.Store(l.cfg)
			select {
			case kick <- struct{}{}:
			default:
			}
			if restart {
				// The set of services or their folders changed: watch anew.
				w.Close()
				if w, err = newWatcher(l.cfg, configFiles); err != nil {
					return err
				}
			}
		case <-tick.C:
			if !l.health(ctx) {
				continue
			}
			// After Docker or the cluster came back: the containers a
			// restart left stopped first (the endpoints may then move),
			// the services' containers once their pods are ready.
			recovering := !l.resyncUntil.IsZero() && len(l.down) == 0
			if recovering {
				l.startStoppedContainers(ctx)
			}
			if l.repoint(ctx) {
				e.writeRecord()
			}
			if recovering {
				if l.resync(ctx) || time.Now().After(l.resyncUntil) {
					l.resyncUntil = time.Time{}
				}
			}
			e.LastApply = l.lastApply
		}
	}
}

func newWatcher(cfg *config.Config, configFiles []string) (*watch.Watcher, error) {
	specs := make([]watch.Spec, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		specs = append(specs, watch.Spec{Service: s.Name, Root: s.Context, Watch: watchPatterns(s), Ignore: s.Ignore})
	}
	files := make([]string, 0, len(configFiles))
	for _, f := range configFiles {
		if a, err := filepath.Abs(f); err == nil {
			files = append(files, a)
		}
	}
	return watch.New(specs, watch.Options{Files: files})
}

// The loop's peers, each behind a small interface so that its decisions can
// be tested with fakes (loop_test.go); adapters.go implements them on
// cluster, kafka, h2 and internal/build.

// builder runs a service's prebuild and builds its image.
type builder interface {
	Build(ctx context.Context, s *config.Service, o buildOptions) (built, error)
}

// buildOptions tune one build.
type buildOptions struct {
	// Background loads the image into Docker in the background (while
	// watching); built.DockerLoaded waits for it.
	Background bool
	// BeforeImage runs after the prebuild, before the image build.
	BeforeImage func()
	// Quick lets an unchanged image come back without its assembled parts
	// (built.Assembled nil): Up's builds, where nothing is compared yet.
	Quick bool
	// Quiet keeps the build's progress lines to -v.
	Quiet bool
	// Changed, when not nil, are the context paths the watcher reported
	// since the service's last build (build.ImageOptions.Changed).
	Changed []string
}

// built is a builder's result.
type built struct {
	Ref string
	// Assembled is the image's parts when devenv assembled it (nil when the
	// engine built it): what a live update compares, and what loads
	// without `docker save`.
	Assembled *build.Assembled
	// NoLive says why an image asked for with Options.Live has no
	// supervisor ("" when it has one).
	NoLive string
	// DockerLoaded waits until the image is in Docker; nil when it is.
	DockerLoaded func() error
	// Cached is set when Docker had the image already: nothing was built.
	Cached bool
}

// liveUpdater writes files into a service's running containers and
// restarts their program there (cluster.LiveTargets, cluster.LiveUpdate).
type liveUpdater interface {
	// LiveTargets returns the service's running containers, or an error
	// wrapping cluster.ErrNoLive unless all its pods are there and Ready.
	LiveTargets(ctx context.Context, namespace, service string) ([]cluster.LiveTarget, error)
	// LiveUpdate removes removed, writes the files of the tar files and
	// restarts the program; an error wrapping cluster.ErrNoLive means
	// nothing was changed.
	LiveUpdate(ctx context.Context, t cluster.LiveTarget, files []byte, removed []string, port int, timeout time.Duration) error
}

// swapper swaps a new image into a Deployment's running pods
// (cluster.SwapImages); an error wrapping cluster.ErrNoSwap asks for a
// rollout instead.
type swapper interface {
	SwapImage(ctx context.Context, namespace, service, ref string, timeout time.Duration) error
}

// loader loads images into the cluster's nodes.
type loader interface {
	// LoadParts loads an assembled image from its parts (only the layers
	// the nodes lack).
	LoadParts(ctx context.Context, ref string, a *build.Assembled) error
	// LoadImage loads an image from Docker; loaded is false when the nodes
	// had it.
	LoadImage(ctx context.Context, ref string) (loaded bool, err error)
	// MissingImages returns the refs some node lacks, in one check for all.
	MissingImages(ctx context.Context, refs []string) ([]string, error)
}

// deployer applies objects (pruning the selector's others) and waits for
// Deployments' rollouts.
type deployer interface {
	Apply(ctx context.Context, objs []*unstructured.Unstructured, selector map[string]string) (cluster.ApplyResult, error)
	// Unchanged says whether every object is still at the version a past
	// apply left it (cluster.Cluster.Unchanged).
	Unchanged(ctx context.Context, objs []*unstructured.Unstructured, selector, versions map[string]string) (bool, error)
	WaitRollout(ctx context.Context, namespace, name string, timeout time.Duration) error
	// RolledOut says which of the named Deployments are rolled out now,
	// without waiting (cluster.Cluster.RolledOut).
	RolledOut(ctx context.Context, namespace string, names []string) (map[string]bool, error)
}

// finder finds an external container's (render.ComponentKafka,
// render.ComponentH2) current address; ip is "" while it does not run.
type finder interface {
	FindIP(ctx context.Context, component string) (ip string, found bool, err error)
}

// loop is the inner loop's state and its decisions: which images it knows,
// which files each running container holds, which images still have to be
// loaded, and for each batch of changes whether to write the new files
// into the running containers (live update), swap the new image into the
// running pods, or roll out; and when an external container moved, to
// re-point the endpoints. It talks to the cluster and the builder only
// through the interfaces above. Up builds, loads and applies through it
// too, so that the loop starts knowing what Up did.
type loop struct {
	cfg    *config.Config
	images map[string]string // each service's current image (Env.Images)
	// ext maps each external component (render.ComponentKafka, …) to the
	// address its endpoints point at.
	ext  map[string]string
	opts Options
	log  *log.Logger
	prog *progress

	builder  builder
	live     liveUpdater
	swapper  swapper
	loader   loader
	deployer deployer
	finder   finder
	// loadConfig reads the configuration files again (config.Load).
	loadConfig func(files ...string) (*config.Config, error)

	// hashKey keys the pods' config hash (render.Options.HashKey).
	hashKey []byte

	// lastApply is what the last apply did (Env.LastApply).
	lastApply cluster.ApplyResult
	// appliedHash is the keyed hash of the objects lastApply applied.
	appliedHash string
	// parts holds the services' newest assembled images until they are
	// loaded, to load them without `docker save`.
	parts map[string]*build.Assembled
	// pushParts: the loader pushes to a registry, where an assembled image
	// goes from its own layers even on the first load.
	pushParts bool
	// inDocker waits for a service's image load into Docker, which runs in
	// the background while watching (buildOptions.Background).
	inDocker map[string]func() error
	watching bool
	// known holds recent assembled images by reference (recent[service]
	// lists them, oldest first): what a live update compares to know which
	// files changed.
	known  map[string]*build.Assembled
	recent map[string][]string
	// layerDir is where the builder stores assembled images' layers
	// (build.State.LayerDir; "" when they stay in memory): the loop
	// removes the files of the images it forgets.
	layerDir string
	// content maps a live-updated container's ID to the image whose files
	// it holds (a container not listed holds its pod spec's image's).
	content map[string]string
	// stale lists services whose newest image was only written into
	// running containers, not loaded into the cluster yet.
	stale      map[string]bool
	noLiveSaid bool // why images have no supervisor was said once
	// served lists the services a batch updated successfully (their new
	// version serves); onUpdated, when set, gets them after each batch
	// (the declared tests that depend on them run).
	served    []string
	onUpdated func(services []string)
	// failed is set when a service failed in the running batch (it gets
	// no summary).
	failed bool
	// obs is told about each batch, its steps (through prog) and how each
	// service was updated; saveStart is when the running batch started.
	obs       Observer
	saveStart time.Time

	// pingDocker and pingCluster, when set, check that the Docker engine
	// (nil where the environment runs no containers) and the cluster's API
	// server answer (health); down holds when each stopped answering.
	pingDocker, pingCluster func(ctx context.Context) error
	down                    map[string]time.Time
	// resyncUntil is set when Docker or the cluster answers again: until
	// then (or until resync is done) each check calls resync.
	resyncUntil time.Time
	// startStopped, when set, starts the project's containers that a
	// Docker restart left stopped (Kafka, H2, the local registry) and
	// returns their names.
	startStopped func(ctx context.Context) ([]string, error)
}

// newLoop returns a loop for cfg that records the services' images in
// images. The cluster's side (live, swapper, loader, deployer) is set once
// the cluster is there.
func newLoop(cfg *config.Config, images map[string]string, opts Options, prog *progress, b builder, f finder) *loop {
	return &loop{cfg: cfg, images: images, ext: map[string]string{}, opts: opts, log: opts.logger(), prog: prog, obs: opts.observer(),
		builder: b, finder: f, loadConfig: config.Load,
		parts: map[string]*build.Assembled{}, inDocker: map[string]func() error{},
		known: map[string]*build.Assembled{}, recent: map[string][]string{}, content: map[string]string{}, stale: map[string]bool{}}
}

// handle acts on one batch of changes. It reports whether the watcher must
// be rebuilt (the services changed).
func (l *loop) handle(ctx context.Context, b watch.Batch, configFiles []string) (restart bool) {
	l.served, l.failed = l.served[:0], false
	defer func() {
		if len(l.served) > 0 && l.onUpdated != nil && ctx.Err() == nil {
			slices.Sort(l.served)
			l.onUpdated(slices.Compact(l.served))
		}
	}()
	lg := l.log
	names := make([]string, 0, len(b.Services))
	for n := range b.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	trigger := "save"
	if b.Config {
		trigger = "config"
	}
	l.saveStart = l.prog.clock()
	l.obs.SaveStarted(trigger, names)
	defer l.obs.SaveEnded()
	l.prog.record()
	defer l.summary(ctx, trigger, slices.Clone(names), b.First)
	if b.Config {
		cfg, err := l.loadConfig(configFiles...)
		if err != nil {
			lg.Infof("✗ %s: %v (keeping the running configuration)", filepath.Base(configFiles[0]), err)
		} else {
			restart = !sameServices(l.cfg, cfg)
			// Where images go is settled for this run (the registry's
			// port is in their names): a changed registry: takes effect
			// at the next up.
			cfg.Registry = l.cfg.Registry
			l.cfg = cfg
			// Build what is new, then re-apply everything: ConfigMaps,
			// Secrets and resources; the config hash restarts the pods.
			for _, s := range cfg.Services {
				if _, ok := l.images[s.Name]; !ok && !slices.Contains(names, s.Name) {
					names = append(names, s.Name)
				}
			}
			if len(names) == 0 {
				l.redeploy(ctx, nil, "configuration")
				return restart
			}
		}
	}
	var changed []string
	for _, n := range names {
		s := l.cfg.Service(n)
		if s == nil {
			continue
		}
		t0 := time.Now()
		_, newImage, err := l.build(ctx, s, false, changedPaths(b, s))
		if ctx.Err() != nil {
			return restart
		}
		if err != nil {
			lg.Infof("✗ %s: %v\n  (the running version stays; save again to retry)", n, err)
			l.applied(n, ui.HowBuild, err)
			continue
		}
		if !newImage && !b.Config {
			lg.Infof("✓ %s unchanged (%s)", n, time.Since(t0).Round(100*time.Millisecond))
			continue
		}
		changed = append(changed, n)
	}
	l.update(ctx, changed, b.Config)
	return restart
}

// update brings the changed services' running pods to their newest images
// (and, with config, re-applies everything).
func (l *loop) update(ctx context.Context, changed []string, config bool) {
	if len(changed) > 0 && !config {
		// Only images changed: write their new files into the running
		// containers where they can take them, else swap the images into
		// the running pods.
		if changed = l.liveUpdate(ctx, changed); len(changed) == 0 {
			return
		}
		if changed = l.swapImages(ctx, changed); len(changed) == 0 {
			return
		}
	}
	if len(changed) > 0 || config {
		l.redeploy(ctx, changed, "")
	}
}

// startStoppedContainers starts the project's containers that should run
// but do not, after Docker answered again.
func (l *loop) startStoppedContainers(ctx context.Context) {
	if l.startStopped == nil {
		return
	}
	started, err := l.startStopped(ctx)
	if len(started) > 0 {
		l.log.Infof("✓ started again what Docker's restart left stopped: %s", strings.Join(started, ", "))
	}
	if err != nil && ctx.Err() == nil {
		l.log.Infof("✗ starting the containers Docker's restart left stopped: %v", err)
	}
}

// resyncFor bounds how long the loop tries to bring services back to their
// newest version after the cluster came back (their pods must be ready
// first).
const resyncFor = 5 * time.Minute

// resync brings back to their newest version the services whose running
// containers do not hold it: after a node restarted (Docker's daemon
// restarted, the node container was killed), the kubelet starts the
// containers again from their pod spec's image, without the files live
// updates wrote into them. It reports whether it is done: false while some
// service's pods are not ready yet (it is called again).
func (l *loop) resync(ctx context.Context) (done bool) {
	done = true
	var lost []string
	for _, s := range l.cfg.Services {
		targets, err := l.live.LiveTargets(ctx, l.cfg.Namespace, s.Name)
		if err != nil {
			l.log.Debugf("%s: checking its running containers: %v", s.Name, err)
			done = false
			continue
		}
		for _, t := range targets {
			holds, ok := l.content[t.ContainerID]
			if !ok {
				holds = t.Image
			}
			if holds != l.images[s.Name] {
				lost = append(lost, s.Name)
				break
			}
		}
	}
	if len(lost) > 0 {
		l.log.Infof("%s: the running containers were started again from their image and lost the saved changes: updating them", strings.Join(lost, ", "))
		l.update(ctx, lost, false)
	}
	return done
}

// buildAll builds every service's image, one after another (builds are CPU
// bound). An unchanged image comes back at once, without its parts (see
// assembleKnown).
func (l *loop) buildAll(ctx context.Context) error {
	for _, s := range l.cfg.Services {
		if _, _, err := l.build(ctx, s, true, nil); err != nil {
			return err
		}
	}
	return nil
}

// build runs the service's prebuild and image build and records the
// resulting image. changed reports a new image (something to deploy).
func (l *loop) build(ctx context.Context, s *config.Service, quick bool, paths []string) (ref string, changed bool, err error) {
	res, err := l.builder.Build(ctx, s, buildOptions{
		Quick:       quick,
		Changed:     paths,
		Background:  l.watching,
		BeforeImage: func() { l.waitDocker([]string{s.Name}) },
	})
	if err != nil {
		return "", false, err
	}
	if res.NoLive != "" {
		if !l.noLiveSaid {
			// Once: saves still work, only slower.
			l.log.Infof("%s: %s", s.Name, res.NoLive)
			l.noLiveSaid = true
		} else {
			l.log.Debugf("%s: %s", s.Name, res.NoLive)
		}
	}
	if res.Assembled != nil {
		l.remember(s.Name, res.Ref, res.Assembled)
	}
	prev := l.images[s.Name]
	l.images[s.Name] = res.Ref
	if res.Assembled != nil && prev != res.Ref {
		l.parts[s.Name] = res.Assembled
	} else {
		delete(l.parts, s.Name)
	}
	if res.DockerLoaded != nil {
		l.inDocker[s.Name] = res.DockerLoaded
	}
	return res.Ref, prev != res.Ref, nil
}

// changedPaths returns the paths of batch b the service's build can rely
// on as all that changed in its context, or nil (every path looked at):
// not after an overflow or a configuration change, and not for a service
// whose watcher does not see its whole context (a prebuild writes files,
// watch: patterns select some).
func changedPaths(b watch.Batch, s *config.Service) []string {
	paths := b.Services[s.Name]
	if b.Overflow || b.Config || len(paths) == 0 || len(s.Prebuild) > 0 || len(watchPatterns(s)) > 0 {
		return nil
	}
	return paths
}

// assembleKnown assembles, once watching starts, the running images that
// Up's quick builds returned without their parts: the first save's live
// update compares against them. An image the engine built has no parts;
// a failure only makes the first save swap images instead.
func (l *loop) assembleKnown(ctx context.Context) {
	for _, s := range l.cfg.Services {
		ref := l.images[s.Name]
		if _, ok := l.known[ref]; ok || ref == "" {
			continue
		}
		res, err := l.builder.Build(ctx, s, buildOptions{Quiet: true})
		switch {
		case err != nil:
			l.log.Debugf("%s: assembling %s for live updates: %v", s.Name, ref, err)
		case res.Ref != ref:
			// Changed since Up: the first batch of saves builds it anew.
			l.log.Debugf("%s: changed since up (%s, now %s)", s.Name, ref, res.Ref)
		case res.Assembled != nil:
			l.remember(s.Name, ref, res.Assembled)
		}
	}
}

// remember keeps an assembled image for live updates: the last few of
// each service.
func (l *loop) remember(service, ref string, a *build.Assembled) {
	const keep = 4
	if _, ok := l.known[ref]; ok {
		return
	}
	l.known[ref] = a
	r := append(l.recent[service], ref)
	forgot := false
	for len(r) > keep {
		delete(l.known, r[0])
		r, forgot = r[1:], true
	}
	l.recent[service] = r
	if forgot && l.layerDir != "" {
		// What is neither known nor waiting to be loaded goes from disk.
		in := slices.Collect(maps.Values(l.known))
		in = append(in, slices.Collect(maps.Values(l.parts))...)
		if err := pruneLayers(l.layerDir, in); err != nil {
			l.log.Debugf("%v", err)
		}
	}
}

// waitDocker waits until the named services' images (all when nil) are in
// Docker, reporting failed loads.
func (l *loop) waitDocker(names []string) {
	for n, wait := range l.inDocker {
		if names != nil && !slices.Contains(names, n) {
			continue
		}
		t0 := time.Now()
		if err := wait(); err != nil && !errors.Is(err, context.Canceled) {
			l.log.Warnf("%v", err)
		}
		if d := time.Since(t0); d >= 10*time.Millisecond {
			l.log.Debugf("%s: waited %s for its last image to be in Docker", n, d.Round(time.Millisecond))
		}
		delete(l.inDocker, n)
	}
}

// loadImages loads the services' images into the cluster's nodes (only
// those named, or all when names is nil), skipping what the nodes have.
func (l *loop) loadImages(ctx context.Context, names []string) error {
	if names != nil {
		// Images that were only written into running containers go too: a
		// rollout or a new pod needs them on the nodes.
		for n := range l.stale {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	l.waitDocker(names)
	var refs []string
	for _, s := range l.cfg.Services {
		if names == nil || slices.Contains(names, s.Name) {
			refs = append(refs, l.images[s.Name])
		}
	}
	// One look at every node's images for all services first: on a warm
	// up every image is usually there already.
	missing, err := l.loader.MissingImages(ctx, refs)
	if err != nil {
		l.log.Debugf("checking the nodes' images: %v", err)
		missing = refs
	}
	for _, s := range l.cfg.Services {
		if names != nil && !slices.Contains(names, s.Name) {
			continue
		}
		ref := l.images[s.Name]
		if !slices.Contains(missing, ref) {
			l.log.Infof("✓ %s: the cluster already has %s", s.Name, ref)
			delete(l.stale, s.Name)
			continue
		}
		if a, ok := l.parts[s.Name]; ok && l.pushParts {
			// To a registry: from the image's own layers, not the engine.
			done := l.prog.begin(stepLoad, "%s: pushing %s", s.Name, ref).end
			err := l.loader.LoadParts(ctx, ref, a)
			done(err, "")
			if err == nil {
				delete(l.parts, s.Name)
				delete(l.stale, s.Name)
				continue
			}
			l.log.Debugf("%s: pushing the assembled image: %v; pushing it from Docker", s.Name, err)
		}
		done := l.prog.begin(stepLoad, "%s: loading %s into the cluster", s.Name, ref).end
		loaded, err := l.loader.LoadImage(ctx, ref)
		if err == nil && !loaded {
			done(nil, "%s: the cluster already has %s", s.Name, ref)
		} else {
			done(err, "")
		}
		if err != nil {
			return err
		}
		delete(l.stale, s.Name)
	}
	return nil
}

// loadNew loads the changed services' new images into the cluster: from
// their assembled parts where there are some (no `docker save`, only the
// new layers), from Docker otherwise.
func (l *loop) loadNew(ctx context.Context, changed []string) error {
	var rest []string
	for _, n := range changed {
		a, ok := l.parts[n]
		if !ok {
			rest = append(rest, n)
			continue
		}
		ref := l.images[n]
		done := l.prog.begin(stepLoad, "%s: loading %s into the cluster", n, ref).end
		err := l.loader.LoadParts(ctx, ref, a)
		done(err, "")
		if err != nil {
			l.log.Debugf("%s: loading the assembled image: %v; loading it from Docker", n, err)
			rest = append(rest, n)
			continue
		}
		delete(l.parts, n)
		delete(l.stale, n)
	}
	if len(rest) == 0 {
		return nil
	}
	return l.loadImages(ctx, rest)
}

// objects renders every object for the current state of the environment.
func (l *loop) objects() ([]*unstructured.Unstructured, error) {
	return render.Objects(l.cfg, render.Options{ExternalIPs: l.ext, Images: l.images, ShowSecrets: true, HashKey: l.hashKey})
}

// apply renders and applies everything, pruning what devenv.yaml no longer has.
func (l *loop) apply(ctx context.Context) error {
	objs, err := l.objects()
	if err != nil {
		return err
	}
	done := l.prog.begin(stepApply, "applying %d objects to namespace %s", len(objs), l.cfg.Namespace).end
	res, err := l.deployer.Apply(ctx, objs, Selector(l.cfg))
	if err != nil {
		done(err, "")
		return err
	}
	l.lastApply = res
	l.appliedHash, _ = hashObjects(objs, l.hashKey) // "" never matches a record
	done(nil, "applied: %d created, %d changed, %d unchanged, %d pruned",
		len(res.Created), len(res.Changed), len(res.Unchanged), len(res.Pruned))
	for _, w := range res.Warnings {
		if l.cfg.Kafka != nil && l.cfg.Kafka.Endpoints == config.EndpointsClassic && strings.Contains(w, "v1 Endpoints is deprecated") {
			// Asked for in devenv.yaml (endpoints: classic), as the seed shows it.
			l.log.Debugf("API server: %s (kafka.endpoints: classic asks for the v1 Endpoints object)", w)
			continue
		}
		l.log.Warnf("API server: %s", w)
	}
	return nil
}

// applyUnlessCurrent is apply, skipped when the objects render as they did
// for the last apply (rec, the up record; same keyed hash) and the cluster
// still holds each of them at the version that apply left: a warm up then
// reads metadata instead of applying every object.
func (l *loop) applyUnlessCurrent(ctx context.Context, rec upRecord) error {
	if l.appliedCurrent(ctx, rec) {
		return nil
	}
	return l.apply(ctx)
}

// appliedCurrent is applyUnlessCurrent's check, which only reads: it
// reports whether the objects are as the last apply (rec) left them, and
// then takes that apply's result as the loop's.
func (l *loop) appliedCurrent(ctx context.Context, rec upRecord) bool {
	if len(rec.Applied) == 0 || rec.AppliedObjects == "" {
		return false
	}
	objs, err := l.objects()
	if err != nil {
		return false // apply says what is wrong
	}
	h, err := hashObjects(objs, l.hashKey)
	if err != nil || h != rec.AppliedObjects {
		return false
	}
	same, err := l.deployer.Unchanged(ctx, objs, Selector(l.cfg), rec.Applied)
	if err != nil {
		l.log.Debugf("checking the applied objects: %v", err)
	}
	if !same {
		return false
	}
	// Unchanged found every object's id among the versions.
	res := cluster.ApplyResult{Versions: rec.Applied, Unchanged: slices.Sorted(maps.Keys(rec.Applied))}
	l.lastApply, l.appliedHash = res, h
	l.log.Infof("✓ %d objects in namespace %s are as the last up applied them", len(objs), l.cfg.Namespace)
	return true
}

// waitRollouts waits for the named services' Deployments (all when nil), all at once.
// One look at all of them comes first (two requests however many there
// are): on a warm up they are rolled out already.
func (l *loop) waitRollouts(ctx context.Context, names []string) error {
	return l.waitRolloutsAfter(ctx, names, l.rolledOut(ctx, names))
}

// rolledOut is waitRollouts' look at all of them at once: the named
// services' (all when nil) that are rolled out.
func (l *loop) rolledOut(ctx context.Context, names []string) map[string]bool {
	done, err := l.deployer.RolledOut(ctx, l.cfg.Namespace, l.serviceNames(names))
	if err != nil {
		l.log.Debugf("checking the rollouts at once: %v", err)
	}
	return done
}

// serviceNames returns the services of names in devenv.yaml's order (all
// when names is nil).
func (l *loop) serviceNames(names []string) []string {
	var want []string
	for _, s := range l.cfg.Services {
		if names == nil || slices.Contains(names, s.Name) {
			want = append(want, s.Name)
		}
	}
	return want
}

// waitRolloutsAfter is waitRollouts with its look at all of them taken
// already (done, from rolledOut): it waits for the others.
func (l *loop) waitRolloutsAfter(ctx context.Context, names []string, done map[string]bool) error {
	timeout := l.opts.rolloutTimeout()
	want := l.serviceNames(names)
	var wg sync.WaitGroup
	errs := make([]error, len(want))
	for i, n := range want {
		if done[n] {
			l.prog.begin(stepRollout, "%s: rollout", n).end(nil, "%s ready", n)
			continue
		}
		wg.Go(func() {
			end := l.prog.begin(stepRollout, "%s: rollout", n).end
			err := l.deployer.WaitRollout(ctx, l.cfg.Namespace, n, timeout)
			end(err, "%s ready", n)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", n, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// liveUpdate writes the changed services' new files into their running
// containers and restarts their programs there (liveUpdater). It returns
// the services that need their images swapped instead: images without
// devenv's supervisor, changes beyond files (ENV, base, …), pods not all
// Ready, and containers whose files devenv does not know. A new version
// that exits or does not listen in time gets the previous files back and
// is reported; the previous version serves again.
func (l *loop) liveUpdate(ctx context.Context, changed []string) (swap []string) {
	if !l.opts.Live {
		return changed
	}
	lg := l.log
	timeout := l.opts.rolloutTimeout()
	for _, n := range changed {
		t0 := time.Now()
		ref := l.images[n]
		plans, err := l.livePlans(ctx, n, ref)
		if err != nil {
			lg.Debugf("%s: no live update: %v", n, err)
			swap = append(swap, n)
			continue
		}
		s := l.cfg.Service(n)
		if !slices.ContainsFunc(plans, func(p livePlan) bool { return !p.changes.Empty() }) {
			// The containers hold these files already (a change undone).
			for _, p := range plans {
				l.content[p.target.ContainerID] = ref
			}
			l.stale[n] = true
			lg.Infof("%s ✓ %s (the running containers hold these files already)", n, time.Since(t0).Round(100*time.Millisecond))
			l.served = append(l.served, n)
			l.applied(n, ui.HowLive, nil)
			continue
		}
		done := l.prog.begin(stepLive, "%s: updating %d running containers in place", n, len(plans)).end
		var failed error
		restored := false
		for i, p := range plans {
			err := error(nil)
			if !p.changes.Empty() {
				err = l.live.LiveUpdate(ctx, p.target, p.changes.Tar, p.changes.Removed, s.Port, timeout)
			}
			if err == nil {
				l.content[p.target.ContainerID] = ref
				continue
			}
			if ctx.Err() != nil {
				// Stopped meanwhile: what the container holds is unknown.
				delete(l.content, p.target.ContainerID)
				done(ctx.Err(), "")
				return nil
			}
			if errors.Is(err, cluster.ErrNoLive) && i == 0 {
				done(nil, "%s: swapping the image instead: %v", n, err)
				swap = append(swap, n)
				break
			}
			restored, failed = l.putBack(ctx, n, ref, plans[:i+1], err, timeout)
			break
		}
		if slices.Contains(swap, n) {
			continue
		}
		if failed != nil {
			done(failed, "")
			l.applied(n, ui.HowLive, failed)
			if !restored {
				lg.Infof("✗ %s: %v\n  (save again to retry)", n, failed)
				continue
			}
			lg.Infof("✗ %s: %v\n  (the previous version is serving again; save again to retry)", n, failed)
			// What runs is the previous image's files: a later rollout (a
			// config change) deploys that, and saving the same files again
			// retries.
			l.images[n] = plans[0].from
			delete(l.parts, n)
			continue
		}
		l.stale[n] = true
		files := 0
		for _, p := range plans {
			files = max(files, len(p.changes.Files)+len(p.changes.Removed))
		}
		done(nil, "%s: %d files updated in %d running containers", n, files, len(plans))
		lg.Infof("%s ✓ %s (updated in place)", n, time.Since(t0).Round(100*time.Millisecond))
		l.served = append(l.served, n)
		l.applied(n, ui.HowLive, nil)
	}
	return swap
}

// putBack writes the previous files back into the containers of plans
// (which were given image ref's) after err. It reports whether every
// container holds its previous files again, and returns err, extended when
// that failed.
func (l *loop) putBack(ctx context.Context, n, ref string, plans []livePlan, err error, timeout time.Duration) (restored bool, _ error) {
	port := l.cfg.Service(n).Port
	restored = true
	for _, p := range plans {
		back, berr := liveDiff(l.known[ref], l.known[p.from])
		if berr == nil {
			berr = l.live.LiveUpdate(ctx, p.target, back.Tar, back.Removed, port, timeout)
		}
		if berr != nil {
			l.log.Debugf("%s: putting the previous files back into pod %s: %v", n, p.target.Pod, berr)
			delete(l.content, p.target.ContainerID)
			err = fmt.Errorf("%w (and putting the previous version back into pod %s failed: %v)", err, p.target.Pod, berr)
			restored = false
			continue
		}
		l.content[p.target.ContainerID] = p.from
	}
	return restored, err
}

// livePlan is what one running container needs to become image ref.
type livePlan struct {
	target  cluster.LiveTarget
	from    string // the image whose files it holds now
	changes build.Changes
}

// livePlans finds service n's running containers and the files each needs
// to hold image ref's, or says why that cannot be done in place.
func (l *loop) livePlans(ctx context.Context, n, ref string) ([]livePlan, error) {
	to := l.known[ref]
	if to == nil {
		return nil, fmt.Errorf("the image was built by the engine")
	}
	t0 := time.Now()
	targets, err := l.live.LiveTargets(ctx, l.cfg.Namespace, n)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	defer func() {
		l.log.Debugf("%s: running containers found in %s, their files compared in %s", n, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	}()
	var plans []livePlan
	for _, t := range targets {
		from, ok := l.content[t.ContainerID]
		if !ok {
			from = t.Image
		}
		old := l.known[from]
		if old == nil {
			return nil, fmt.Errorf("pod %s runs %s, whose files devenv does not know", t.Pod, from)
		}
		ch, err := liveDiff(old, to)
		if err != nil {
			return nil, err
		}
		plans = append(plans, livePlan{target: t, from: from, changes: ch})
	}
	return plans, nil
}

// swapImages loads the changed services' images and swaps them into the
// running pods (swapper), which is faster than a rollout. It returns the
// services that need a rollout instead: those whose deployment cannot be
// swapped, and all of them when the images cannot be loaded.
func (l *loop) swapImages(ctx context.Context, changed []string) (rollout []string) {
	lg := l.log
	t0 := time.Now()
	if err := l.loadNew(ctx, changed); err != nil {
		return changed // the rollout path loads again and reports
	}
	timeout := l.opts.rolloutTimeout()
	for _, n := range changed {
		done := l.prog.begin(stepSwap, "%s: swapping in %s", n, l.images[n]).end
		err := l.swapper.SwapImage(ctx, l.cfg.Namespace, n, l.images[n], timeout)
		switch {
		case errors.Is(err, cluster.ErrNoSwap):
			done(nil, "%s: rolling out instead: %v", n, err)
			rollout = append(rollout, n)
		case err != nil:
			done(err, "")
			lg.Infof("✗ %s: %v", n, err)
			l.applied(n, ui.HowSwap, err)
		default:
			done(nil, "%s: running %s", n, l.images[n])
			lg.Infof("%s ✓ %s", n, time.Since(t0).Round(100*time.Millisecond))
			l.served = append(l.served, n)
			l.applied(n, ui.HowSwap, nil)
		}
	}
	return rollout
}

// redeploy loads the changed services' images, applies everything, and
// waits for the changed services' rollouts (all of them after a config change).
func (l *loop) redeploy(ctx context.Context, changed []string, why string) {
	lg := l.log
	t0 := time.Now()
	how := ui.HowRollout
	if why != "" {
		how = ui.HowConfig
	}
	failed := func(err error) {
		for _, n := range changed {
			l.applied(n, how, err)
		}
	}
	if err := l.loadImages(ctx, changed); err != nil {
		if ctx.Err() != nil {
			return // stopped watching: not a failure
		}
		lg.Infof("✗ loading images: %v", err)
		failed(fmt.Errorf("loading images: %w", err))
		return
	}
	if err := l.apply(ctx); err != nil {
		if ctx.Err() != nil {
			return // stopped watching: not a failure
		}
		lg.Infof("✗ applying: %v", err)
		failed(fmt.Errorf("applying: %w", err))
		return
	}
	wait := changed
	if why != "" {
		wait = nil
	}
	if err := l.waitRollouts(ctx, wait); err != nil {
		if ctx.Err() != nil {
			return // stopped watching: not a failure
		}
		lg.Infof("✗ rollout: %v", err)
		failed(fmt.Errorf("rollout: %w", err))
		return
	}
	for _, n := range changed {
		lg.Infof("%s ✓ %s", n, time.Since(t0).Round(100*time.Millisecond))
		l.served = append(l.served, n)
		if why == "" {
			l.applied(n, how, nil)
		}
	}
	if why != "" {
		lg.Infof("✓ %s applied (%s)", why, time.Since(t0).Round(100*time.Millisecond))
		for _, s := range l.cfg.Services {
			l.served = append(l.served, s.Name)
			l.applied(s.Name, how, nil)
		}
	}
}

// applied tells the Observer how service n was updated (err: that it
// failed), with the time since the batch started.
func (l *loop) applied(n, how string, err error) {
	u := ui.Update{Service: n, How: how, Image: l.images[n], OK: err == nil}
	if !l.saveStart.IsZero() {
		u.Duration = ui.Millis(time.Since(l.saveStart))
	}
	if err != nil {
		u.Error = err.Error()
		l.failed = true
	}
	l.obs.Applied(u)
}

// summary ends the running batch's record of steps and, when every
// service it changed serves its new version, prints its summary line and
// gives it to Options.Saved. first is when its first change was seen.
func (l *loop) summary(ctx context.Context, trigger string, names []string, first time.Time) {
	steps := l.prog.recorded()
	if ctx.Err() != nil || l.failed || len(l.served) == 0 {
		return
	}
	s := summarize(trigger, names, first, l.saveStart, l.prog.clock(), steps)
	l.log.Infof("%s", s)
	if l.opts.Saved != nil {
		l.opts.Saved(s)
	}
}

func sameServices(a, b *config.Config) bool {
	if len(a.Services) != len(b.Services) {
		return false
	}
	for i := range a.Services {
		x, y := a.Services[i], b.Services[i]
		if x.Name != y.Name || x.Context != y.Context || !slices.Equal(x.Watch, y.Watch) || !slices.Equal(x.Ignore, y.Ignore) {
			return false
		}
	}
	return true
}

// externals are the components repoint checks, in order, with the names
// its lines give them.
var externals = []struct{ component, name string }{
	{render.ComponentKafka, "Kafka"},
	{render.ComponentH2, "H2"},
}

// The parts health watches, with the names its lines give them.
const (
	partDocker  = "Docker"
	partCluster = "the cluster's API server"
)

// health checks that Docker and then the cluster answer, and says so when
// one stops answering (once) and when it answers again (with how long it
// was away), so that a restarted Docker daemon or a restarting node is not
// met with silence. It reports whether Docker answers: the endpoint check
// needs it.
func (l *loop) health(ctx context.Context) (dockerUp bool) {
	if l.pingDocker != nil && !l.check(ctx, partDocker, l.pingDocker,
		"the containers and the cluster are out of reach; saves fail until it answers again") {
		return false
	}
	if l.pingCluster != nil {
		l.check(ctx, partCluster, l.pingCluster, "the node may be restarting; saves fail until it answers again")
	}
	return true
}

// check runs ping for part and says what changed since the last check.
func (l *loop) check(ctx context.Context, part string, ping func(context.Context) error, meaning string) bool {
	pctx, cancel := context.WithTimeout(ctx, endpointCheckEvery)
	err := ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	since, wasDown := l.down[part]
	switch {
	case err != nil && !wasDown:
		if l.down == nil {
			l.down = map[string]time.Time{}
		}
		l.down[part] = time.Now()
		l.log.Infof("✗ %s does not answer (%v): %s; devenv checks again every %s", part, firstLine(err), meaning, endpointCheckEvery)
	case err == nil && wasDown:
		delete(l.down, part)
		l.log.Infof("✓ %s answers again after %s", part, time.Since(since).Round(100*time.Millisecond))
		// The node may have restarted, and its containers without the
		// files live updates wrote: resync checks once the pods are ready.
		l.resyncUntil = time.Now().Add(resyncFor)
	}
	return err == nil
}

// firstLine is the first line of err's text.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// repoint re-applies the endpoints when an external container's (Kafka's,
// the H2 server's) address changed: it was recreated behind devenv's back.
func (l *loop) repoint(ctx context.Context) (moved bool) {
	for _, x := range externals {
		old, ok := l.ext[x.component]
		if !ok {
			continue
		}
		ip, found, err := l.finder.FindIP(ctx, x.component)
		if err != nil || !found || ip == "" || ip == old {
			continue
		}
		l.log.Infof("%s's address changed from %s to %s: re-pointing the endpoints", x.name, old, ip)
		l.ext[x.component] = ip
		moved = true
	}
	if !moved {
		return false
	}
	if err := l.apply(ctx); err != nil && ctx.Err() == nil {
		l.log.Infof("✗ re-pointing the endpoints: %v", err)
	}
	return true
}
