package devenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/kafka"
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
func (e *Env) Watch(ctx context.Context, configFiles []string) error {
	lg := e.opts.logger()
	w, err := e.newWatcher(configFiles)
	if err != nil {
		return err
	}
	defer func() { w.Close() }()
	e.watching = true
	go func() {
		// Ahead of the first save: what loading new layers needs to know.
		if err := e.Cluster.PrepareLoads(ctx, e.docker); err != nil && ctx.Err() == nil {
			lg.Debugf("preparing image loads: %v", err)
		}
	}()
	defer func() { e.watching = false; e.waitDocker(nil) }()
	if e.opts.PodLogs != nil {
		names := make([]string, 0, len(e.Config.Services))
		for _, s := range e.Config.Services {
			names = append(names, s.Name)
		}
		logsCtx, stopLogs := context.WithCancel(ctx)
		defer stopLogs()
		go streamLogs(logsCtx, e.Cluster.Client, e.Config, names, LogOptions{Follow: true, Color: e.opts.Color, Out: e.opts.PodLogs})
	}
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
			restart := e.handle(ctx, b, configFiles)
			if restart {
				// The set of services or their folders changed: watch anew.
				w.Close()
				if w, err = e.newWatcher(configFiles); err != nil {
					return err
				}
			}
		case <-tick.C:
			e.repoint(ctx)
		}
	}
}

func (e *Env) newWatcher(configFiles []string) (*watch.Watcher, error) {
	specs := make([]watch.Spec, 0, len(e.Config.Services))
	for _, s := range e.Config.Services {
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

// handle acts on one batch of changes. It reports whether the watcher must
// be rebuilt (the services changed).
func (e *Env) handle(ctx context.Context, b watch.Batch, configFiles []string) (restart bool) {
	lg := e.opts.logger()
	names := make([]string, 0, len(b.Services))
	for n := range b.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	if b.Config {
		cfg, err := config.Load(configFiles...)
		if err != nil {
			lg.Infof("✗ %s: %v (keeping the running configuration)", filepath.Base(configFiles[0]), err)
		} else {
			restart = !sameServices(e.Config, cfg)
			e.Config = cfg
			// Build what is new, then re-apply everything: ConfigMaps,
			// Secrets and resources; the config hash restarts the pods.
			for _, s := range cfg.Services {
				if _, ok := e.Images[s.Name]; !ok && !contains(names, s.Name) {
					names = append(names, s.Name)
				}
			}
			if len(names) == 0 {
				e.redeploy(ctx, nil, "configuration")
				return restart
			}
		}
	}
	var changed []string
	for _, n := range names {
		s := e.Config.Service(n)
		if s == nil {
			continue
		}
		t0 := time.Now()
		_, newImage, err := e.buildService(ctx, s)
		if ctx.Err() != nil {
			return restart
		}
		if err != nil {
			lg.Infof("✗ %s: %v\n  (the running version stays; save again to retry)", n, err)
			continue
		}
		if !newImage && !b.Config {
			lg.Infof("✓ %s unchanged (%s)", n, time.Since(t0).Round(100*time.Millisecond))
			continue
		}
		changed = append(changed, n)
	}
	if len(changed) > 0 && !b.Config {
		// Only images changed: write their new files into the running
		// containers where they can take them, else swap the images into
		// the running pods.
		if changed = e.liveUpdate(ctx, changed); len(changed) == 0 {
			return restart
		}
		if changed = e.swapImages(ctx, changed); len(changed) == 0 {
			return restart
		}
	}
	if len(changed) > 0 || b.Config {
		e.redeploy(ctx, changed, "")
	}
	return restart
}

// loadNew loads the changed services' new images into the cluster: from
// their assembled parts where there are some (no `docker save`, only the
// new layers), from Docker otherwise.
func (e *Env) loadNew(ctx context.Context, changed []string) error {
	var rest []string
	for _, n := range changed {
		a, ok := e.parts[n]
		if !ok {
			rest = append(rest, n)
			continue
		}
		ref := e.Images[n]
		done := e.prog.start("%s: loading %s into the cluster", n, ref)
		parts := cluster.ImageParts{Config: a.Config}
		for _, l := range a.Layers {
			parts.Layers = append(parts.Layers, cluster.LayerPart{DiffID: l.DiffID, Size: l.Size, Data: l.Data})
		}
		err := e.Cluster.LoadParts(ctx, e.docker, ref, parts)
		done(err, "")
		if err != nil {
			e.opts.logger().Debugf("%s: loading the assembled image: %v; loading it from Docker", n, err)
			rest = append(rest, n)
			continue
		}
		delete(e.parts, n)
		delete(e.stale, n)
	}
	if len(rest) == 0 {
		return nil
	}
	return e.loadImages(ctx, rest)
}

// liveUpdate writes the changed services' new files into their running
// containers and restarts their programs there (cluster.LiveUpdate). It
// returns the services that need their images swapped instead: images
// without devenv's supervisor, changes beyond files (ENV, base, …),
// pods not all Ready, and containers whose files devenv does not know. A
// new version that exits or does not listen in time gets the previous
// files back and is reported; the previous version serves again.
func (e *Env) liveUpdate(ctx context.Context, changed []string) (swap []string) {
	if !e.opts.Live {
		return changed
	}
	lg := e.opts.logger()
	timeout := e.opts.rolloutTimeout()
	for _, n := range changed {
		t0 := time.Now()
		ref := e.Images[n]
		plans, err := e.livePlans(ctx, n, ref)
		if err != nil {
			lg.Debugf("%s: no live update: %v", n, err)
			swap = append(swap, n)
			continue
		}
		s := e.Config.Service(n)
		if !slices.ContainsFunc(plans, func(p livePlan) bool { return !p.changes.Empty() }) {
			// The containers hold these files already (a change undone).
			for _, p := range plans {
				e.content[p.target.ContainerID] = ref
			}
			e.stale[n] = true
			lg.Infof("%s ✓ %s (the running containers hold these files already)", n, time.Since(t0).Round(100*time.Millisecond))
			continue
		}
		done := e.prog.start("%s: updating %d running containers in place", n, len(plans))
		var failed error
		restored := false
		for i, p := range plans {
			err := error(nil)
			if !p.changes.Empty() {
				err = e.Cluster.LiveUpdate(ctx, e.docker, cluster.LiveChange{Target: p.target, Files: p.changes.Tar, Removed: p.changes.Removed, Port: s.Port, Timeout: timeout})
			}
			if err == nil {
				e.content[p.target.ContainerID] = ref
				continue
			}
			if ctx.Err() != nil {
				// Stopped meanwhile: what the container holds is unknown.
				delete(e.content, p.target.ContainerID)
				done(ctx.Err(), "")
				return nil
			}
			if errors.Is(err, cluster.ErrNoLive) && i == 0 {
				done(nil, "%s: swapping the image instead: %v", n, err)
				swap = append(swap, n)
				break
			}
			restored, failed = e.putBack(ctx, n, ref, plans[:i+1], err, timeout)
			break
		}
		if contains(swap, n) {
			continue
		}
		if failed != nil {
			done(failed, "")
			if !restored {
				lg.Infof("✗ %s: %v\n  (save again to retry)", n, failed)
				continue
			}
			lg.Infof("✗ %s: %v\n  (the previous version is serving again; save again to retry)", n, failed)
			// What runs is the previous image's files: a later rollout (a
			// config change) deploys that, and saving the same files again
			// retries.
			e.Images[n] = plans[0].from
			delete(e.parts, n)
			continue
		}
		e.stale[n] = true
		files := 0
		for _, p := range plans {
			files = max(files, len(p.changes.Files)+len(p.changes.Removed))
		}
		done(nil, "%s: %d files updated in %d running containers", n, files, len(plans))
		lg.Infof("%s ✓ %s (updated in place)", n, time.Since(t0).Round(100*time.Millisecond))
	}
	return swap
}

// putBack writes the previous files back into the containers of plans
// (which were given image ref's) after err. It reports whether every
// container holds its previous files again, and returns err, extended when
// that failed.
func (e *Env) putBack(ctx context.Context, n, ref string, plans []livePlan, err error, timeout time.Duration) (restored bool, _ error) {
	port := e.Config.Service(n).Port
	restored = true
	for _, p := range plans {
		back, berr := build.LiveDiff(e.known[ref], e.known[p.from])
		if berr == nil {
			berr = e.Cluster.LiveUpdate(ctx, e.docker, cluster.LiveChange{Target: p.target, Files: back.Tar, Removed: back.Removed, Port: port, Timeout: timeout})
		}
		if berr != nil {
			e.opts.logger().Debugf("%s: putting the previous files back into pod %s: %v", n, p.target.Pod, berr)
			delete(e.content, p.target.ContainerID)
			err = fmt.Errorf("%w (and putting the previous version back into pod %s failed: %v)", err, p.target.Pod, berr)
			restored = false
			continue
		}
		e.content[p.target.ContainerID] = p.from
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
func (e *Env) livePlans(ctx context.Context, n, ref string) ([]livePlan, error) {
	to := e.known[ref]
	if to == nil {
		return nil, fmt.Errorf("the image was built by the engine")
	}
	targets, err := e.Cluster.LiveTargets(ctx, e.Config.Namespace, n, n)
	if err != nil {
		return nil, err
	}
	var plans []livePlan
	for _, t := range targets {
		from, ok := e.content[t.ContainerID]
		if !ok {
			from = t.Image
		}
		old := e.known[from]
		if old == nil {
			return nil, fmt.Errorf("pod %s runs %s, whose files devenv does not know", t.Pod, from)
		}
		ch, err := build.LiveDiff(old, to)
		if err != nil {
			return nil, err
		}
		plans = append(plans, livePlan{target: t, from: from, changes: ch})
	}
	return plans, nil
}

// swapImages loads the changed services' images and swaps them into the
// running pods (cluster.SwapImages), which is faster than a rollout. It
// returns the services that need a rollout instead: those whose deployment
// cannot be swapped, and all of them when the images cannot be loaded.
func (e *Env) swapImages(ctx context.Context, changed []string) (rollout []string) {
	lg := e.opts.logger()
	t0 := time.Now()
	if err := e.loadNew(ctx, changed); err != nil {
		return changed // the rollout path loads again and reports
	}
	timeout := e.opts.rolloutTimeout()
	for _, n := range changed {
		done := e.prog.start("%s: swapping in %s", n, e.Images[n])
		err := e.Cluster.SwapImages(ctx, e.Config.Namespace, n, map[string]string{n: e.Images[n]}, timeout)
		switch {
		case errors.Is(err, cluster.ErrNoSwap):
			done(nil, "%s: rolling out instead: %v", n, err)
			rollout = append(rollout, n)
		case err != nil:
			done(err, "")
			lg.Infof("✗ %s: %v", n, err)
		default:
			done(nil, "%s: running %s", n, e.Images[n])
			lg.Infof("%s ✓ %s", n, time.Since(t0).Round(100*time.Millisecond))
		}
	}
	return rollout
}

// redeploy loads the changed services' images, applies everything, and
// waits for the changed services' rollouts (all of them after a config change).
func (e *Env) redeploy(ctx context.Context, changed []string, why string) {
	lg := e.opts.logger()
	t0 := time.Now()
	if err := e.loadImages(ctx, changed); err != nil {
		if ctx.Err() != nil {
			return // stopped watching: not a failure
		}
		lg.Infof("✗ loading images: %v", err)
		return
	}
	if err := e.apply(ctx); err != nil {
		if ctx.Err() != nil {
			return // stopped watching: not a failure
		}
		lg.Infof("✗ applying: %v", err)
		return
	}
	wait := changed
	if why != "" {
		wait = nil
	}
	if err := e.waitRollouts(ctx, wait); err != nil {
		if ctx.Err() != nil {
			return // stopped watching: not a failure
		}
		lg.Infof("✗ rollout: %v", err)
		return
	}
	for _, n := range changed {
		lg.Infof("%s ✓ %s", n, time.Since(t0).Round(100*time.Millisecond))
	}
	if why != "" {
		lg.Infof("✓ %s applied (%s)", why, time.Since(t0).Round(100*time.Millisecond))
	}
}

func sameServices(a, b *config.Config) bool {
	if len(a.Services) != len(b.Services) {
		return false
	}
	for i := range a.Services {
		x, y := a.Services[i], b.Services[i]
		if x.Name != y.Name || x.Context != y.Context || !equalStrings(x.Watch, y.Watch) || !equalStrings(x.Ignore, y.Ignore) {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// repoint re-applies the endpoints when the Kafka container's address
// changed (it was recreated behind devenv's back).
func (e *Env) repoint(ctx context.Context) {
	if e.Kafka == nil {
		return
	}
	ep, found, err := kafka.Find(ctx, e.docker, e.Config.Name)
	if err != nil || !found || ep.IP == "" || ep.IP == e.Kafka.IP {
		return
	}
	lg := e.opts.logger()
	lg.Infof("Kafka's address changed from %s to %s: re-pointing the endpoints", e.Kafka.IP, ep.IP)
	e.Kafka = &ep
	if err := e.apply(ctx); err != nil && ctx.Err() == nil {
		lg.Infof("✗ re-pointing the endpoints: %v", err)
	}
}
