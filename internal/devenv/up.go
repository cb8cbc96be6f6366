package devenv

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/internal/ui"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/templates"
)

// DefaultRolloutTimeout bounds the wait for each service's rollout.
const DefaultRolloutTimeout = 3 * time.Minute

// Options tune Up, Down and Status.
type Options struct {
	// Kubeconfig is the kubeconfig file to write the cluster's context into;
	// "" means the user's default one, as kind does.
	Kubeconfig string
	// Retain keeps a failed cluster's nodes for debugging.
	Retain bool
	// RolloutTimeout bounds the wait for each Deployment; 0 means DefaultRolloutTimeout.
	RolloutTimeout time.Duration
	// Log receives progress lines; nil is silent.
	Log *log.Logger
	// BuildOutput receives image build output as it comes (-v); nil shows it only on failure.
	BuildOutput io.Writer
	// PodLogs receives the services' pod logs, prefixed with the service's
	// name, while Watch runs; nil for none. Color colours the prefixes.
	PodLogs io.Writer
	Color   bool
	// PrivilegedShim lets Up call cluster.InstallPrivilegedShim, which, on a
	// Docker engine that refuses --privileged, puts devenv's docker shim
	// first in the process's PATH (a process-wide change; the CLI sets it).
	// Without it such an engine makes Up fail with cluster.ErrShimNeeded.
	PrivilegedShim bool
	// Live builds images for live update: a simple Dockerfile's image runs
	// under devenv's supervisor, so that Watch can write a save's changed
	// files into the running containers and restart their program, without
	// new containers (see cluster.LiveUpdate). The CLI sets it unless --no-live, watching or not.
	Live bool
	// LockWait bounds the wait for another devenv process that holds the
	// project's lock (see ErrBusy); 0 means DefaultLockWait, a negative
	// value not to wait.
	LockWait time.Duration
	// Observer is told what Up and Watch do as it happens (the browser
	// view); nil for none.
	Observer Observer
	// Saved, when set, gets each save's summary while Watch runs (the
	// line the loop prints; see SaveSummary). It must not block.
	Saved func(SaveSummary)
}

func (o Options) lockWait() time.Duration {
	if o.LockWait == 0 {
		return DefaultLockWait
	}
	return o.LockWait
}

func (o Options) rolloutTimeout() time.Duration {
	if o.RolloutTimeout == 0 {
		return DefaultRolloutTimeout
	}
	return o.RolloutTimeout
}

func (o Options) logger() *log.Logger {
	if o.Log == nil {
		return log.Nop()
	}
	return o.Log
}

// Env is a running environment as Up left it: what the watch loop and tests
// need to act on it. Watch keeps Config, Images and LastApply current; Kafka
// and H2 are the external containers as Up started them (when one is
// recreated while watching, Watch re-points the cluster's endpoints at it).
type Env struct {
	Config  *config.Config
	Cluster *cluster.Cluster
	Kafka   *kafka.Endpoint // nil without Kafka
	H2      *h2.Endpoint    // nil unless H2 runs in server mode
	Images  map[string]string
	// LastApply is what the last apply created, changed, pruned and left alone.
	LastApply cluster.ApplyResult

	docker   *client.Client
	resolver *images.Resolver
	network  cluster.Network
	state    *build.State
	opts     Options
	prog     *progress
	lock     *lock
	// freshCluster is set when this Up created the cluster.
	freshCluster bool
	// loop holds what the watch loop decides on (the images it knows, the
	// files the running containers hold) and makes the decisions; Up
	// builds, loads and applies through it too.
	loop *loop
}

// Close releases the project lock, the Docker connection and the
// sessions live updates keep open to the nodes. The environment itself
// keeps running.
func (e *Env) Close() {
	if e.Cluster != nil {
		_ = e.Cluster.Close()
	}
	e.lock.release()
	if e.docker != nil {
		_ = e.docker.Close()
	}
}

// keepContexts writes what the builds know of the services' contexts to
// the state folder, for the next process (see build.State.SaveContexts).
func (e *Env) keepContexts() {
	if err := e.state.SaveContexts(); err != nil {
		e.opts.logger().Debugf("%v", err)
	}
}

// Selector is the label set every object devenv applies for cfg carries.
func Selector(cfg *config.Config) map[string]string {
	return map[string]string{templates.LabelProject: cfg.Name}
}

// Up brings the environment described by cfg up and waits until every
// service is ready. The cluster is created while the external containers
// start and the images build. The returned Env must be closed.
//
// Up holds the project's lock exclusively (another up or a down waits up
// to Options.LockWait); Watch turns it into a shared lock, and Close
// releases it.
func Up(ctx context.Context, cfg *config.Config, opts Options) (*Env, error) {
	lg := opts.logger()
	lk, err := lockProject(ctx, cfg, opts, "up", lockExclusive)
	if err != nil {
		return nil, err
	}
	obs := opts.observer()
	obs.Status(configStatus(cfg))
	obs.SaveStarted(ui.HowUp, serviceNames(cfg))
	defer obs.SaveEnded()
	t0 := time.Now()
	cfg = effective(cfg)
	env := &Env{Config: cfg, Images: map[string]string{}, opts: opts, prog: &progress{log: lg, obs: opts.Observer}, lock: lk}
	ok := false
	defer func() {
		if !ok {
			env.Close()
		}
	}()
	if env.docker, err = dockerx.Connect(ctx); err != nil {
		return nil, err
	}
	env.resolver = images.NewResolver(env.docker, lg)
	if dir, err := images.RememberDir(); err == nil {
		env.resolver.RememberIn = dir
	}
	if env.state, err = loadState(cfg); err != nil {
		return nil, err
	}
	// A cluster devenv did not create is up already: connect and check it
	// first, so that what it says (where images go) shapes the builds.
	var existingCluster *cluster.Cluster
	if cfg.Registry != nil && cfg.Registry.Local {
		// Its address (localhost:PORT) goes into the config the pushes use.
		if err := env.ensureNetwork(ctx); err != nil {
			return nil, err
		}
		if cfg, err = env.ensureLocalRegistry(ctx); err != nil {
			return nil, err
		}
		env.Config = cfg
	}
	if existing(cfg) {
		if existingCluster, cfg, err = env.useExisting(ctx); err != nil {
			return nil, err
		}
		env.Config = cfg
	}
	env.loop = newLoop(cfg, env.Images, opts, env.prog,
		imageBuilder{project: cfg.Name, registry: registryPrefix(cfg), docker: env.docker, resolver: env.resolver, state: env.state, opts: opts, prog: env.prog, bundledSaid: &sync.Map{}},
		dockerFinder{docker: env.docker, project: projectKey(cfg)})
	env.loop.layerDir = env.state.LayerDir()
	if env.loop.hashKey, err = dirs.Key(render.ConfigHashKeyName); err != nil {
		return nil, err
	}

	if (runsContainers(cfg) || !existing(cfg)) && env.network.Name == "" {
		done := env.prog.start("preparing the %s Docker network", cluster.NetworkName)
		err = env.ensureNetwork(ctx)
		done(err, "")
		if err != nil {
			return nil, err
		}
	}

	boot := env.ensureCluster
	if existingCluster != nil {
		boot = func(context.Context) (*cluster.Cluster, error) { return existingCluster, nil }
	}
	c, err := bootWhile(ctx, boot, func(ctx context.Context) error {
		if err := env.startExternal(ctx); err != nil {
			return err
		}
		if env.Kafka != nil {
			env.loop.ext[render.ComponentKafka] = env.Kafka.IP
		}
		if env.H2 != nil {
			env.loop.ext[render.ComponentH2] = env.H2.IP
		}
		if err := env.loop.buildAll(ctx); err != nil {
			return err
		}
		env.keepContexts()
		return nil
	}, env.preload)
	if err != nil {
		return nil, err
	}
	env.attachCluster(c)
	if cfg.Registry != nil && cfg.Registry.Local {
		err := env.wireLocalRegistry(ctx, c)
		if errors.Is(err, errNoHostFiles) && cfg.Registry.Default {
			// A cluster from before devenv set nodes up for a registry:
			// load into it as then (the images keep their devenv.local
			// names either way).
			lg.Infof("cluster %s cannot pull from the local registry (%v): loading images into its node instead; devenv down and up make a cluster that can", cfg.Cluster.Name, err)
			env.loop.loader, env.loop.pushParts = clusterOps{c: c, docker: env.docker}, false
			err = nil
		}
		if err != nil {
			return nil, err
		}
	}

	rec, _ := readRecord(ProjectID(cfg)) // none: apply
	// What a warm up only looks at, all at once: the images on the nodes
	// (loaded where missing), the objects as the last up applied them,
	// the rollouts, the topics. Only the apply must wait for the loads.
	var (
		loadErr, topicsErr error
		current            bool
		rolled             map[string]bool
		wg                 sync.WaitGroup
	)
	wg.Go(func() { loadErr = env.loop.loadImages(ctx, nil) })
	wg.Go(func() { current = env.loop.appliedCurrent(ctx, rec) })
	wg.Go(func() { rolled = env.loop.rolledOut(ctx, nil) })
	wg.Go(func() { topicsErr = env.ensureTopics(ctx) })
	wg.Wait()
	if loadErr != nil {
		return nil, loadErr
	}
	// On a cluster this up created, the nodes pull the images from the
	// local registry while its controller manager starts (prePull).
	stopPull := env.prePull(ctx)
	defer stopPull()
	var applyErr error
	if !current {
		applyErr = env.loop.apply(ctx)
	}
	env.LastApply = env.loop.lastApply
	if applyErr != nil {
		return nil, applyErr
	}
	if topicsErr != nil {
		return nil, topicsErr
	}
	if !current {
		if err := env.waitControllers(ctx); err != nil {
			return nil, err
		}
		rolled = env.loop.rolledOut(ctx, nil) // the look above came before the apply
	}
	if err := env.loop.waitRolloutsAfter(ctx, nil, rolled); err != nil {
		return nil, err
	}
	if err := env.waitClusterDNS(ctx); err != nil {
		return nil, err
	}
	env.writeRecord()
	for _, s := range cfg.Services {
		obs.Applied(ui.Update{Service: s.Name, How: ui.HowUp, Image: env.Images[s.Name], Duration: ui.Millis(time.Since(t0)), OK: true})
	}
	if opts.Observer != nil {
		obs.Status(env.uiStatus(ctx, cfg))
	}
	ok = true
	return env, nil
}

// preloadGrace is how long bootWhile waits for boot after work before it
// preloads: a reused cluster answers within it (then the loads are checked
// all at once, which is faster), a new one takes tens of seconds.
const preloadGrace = time.Second

// bootWhile creates the cluster (boot, tens of seconds) in the background
// while work (starting the external containers, building the images) runs.
// While kind runs kubeadm, the node's containerd already answers: when work
// succeeded and the cluster is still booting, preload loads the images
// meanwhile, so they are in place when the control plane is (a cluster that
// is already up, or reused, gets them from loadImages later; boot gets
// preloadGrace to say so). preload only
// saves time: it is stopped when boot fails. bootWhile returns once boot and
// preload have ended, with work's error first, then boot's.
func bootWhile(ctx context.Context, boot func(context.Context) (*cluster.Cluster, error), work func(context.Context) error, preload func(context.Context)) (*cluster.Cluster, error) {
	type result struct {
		c   *cluster.Cluster
		err error
	}
	booted := make(chan result, 1)
	go func() {
		c, err := boot(ctx)
		booted <- result{c, err}
	}()

	err := work(ctx)
	pctx, stopPreload := context.WithCancel(ctx)
	defer stopPreload()
	preloaded := make(chan struct{})
	var r result
	grace := time.NewTimer(preloadGrace)
	defer grace.Stop()
	if err != nil {
		grace.Reset(0)
	}
	select {
	case r = <-booted:
		close(preloaded)
	case <-grace.C:
		if err != nil {
			close(preloaded)
		} else {
			go func() {
				defer close(preloaded)
				preload(pctx)
			}()
		}
		r = <-booted
	}
	if r.err != nil || err != nil {
		stopPreload()
	}
	<-preloaded
	if err != nil {
		return nil, err
	}
	return r.c, r.err
}

func contextOf(c *cluster.Cluster) string {
	if c == nil {
		return ""
	}
	return c.Context
}

// portFree reports whether a TCP port on 127.0.0.1 can be listened on.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// freePort returns a free TCP port on 127.0.0.1, or 0 to let Docker choose.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func limits(r config.Resources) (cpus float64, mem int64, err error) {
	if r.CPU != "" {
		q, err := resource.ParseQuantity(r.CPU)
		if err != nil {
			return 0, 0, err
		}
		cpus = float64(q.MilliValue()) / 1000
	}
	if r.Memory != "" {
		q, err := resource.ParseQuantity(r.Memory)
		if err != nil {
			return 0, 0, err
		}
		mem = q.Value()
	}
	return cpus, mem, nil
}

// watchPatterns are the service's source patterns for watching and for the
// prebuild's inputs. A service with a prebuild and no watch list watches its
// whole folder: its sources feed the prebuild and are usually excluded from
// the Docker context by .dockerignore, which must then not hide them.
func watchPatterns(s *config.Service) []string {
	if len(s.Watch) == 0 && len(s.Prebuild) > 0 {
		return []string{"**"}
	}
	return s.Watch
}
