package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/render"
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
// need to act on it.
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
	// parts holds the services' newest assembled images until they are
	// loaded, to load them without `docker save`.
	parts map[string]*build.Assembled
	// inDocker waits for a service's image load into Docker, which runs in
	// the background while watching (build.ImageOptions.Background).
	inDocker map[string]func() error
	watching bool
	// known holds recent assembled images by reference (recent[service]
	// lists them, oldest first): what a live update compares to know which
	// files changed.
	known  map[string]*build.Assembled
	recent map[string][]string
	// content maps a live-updated container's ID to the image whose files
	// it holds (a container not listed holds its pod spec's image's).
	content map[string]string
	// stale lists services whose newest image was only written into
	// running containers, not loaded into the cluster yet.
	stale      map[string]bool
	noLiveSaid bool // why images have no supervisor was said once
}

// waitDocker waits until the named services' images (all when nil) are in
// Docker, reporting failed loads.
func (e *Env) waitDocker(names []string) {
	for n, wait := range e.inDocker {
		if names != nil && !contains(names, n) {
			continue
		}
		if err := wait(); err != nil && !errors.Is(err, context.Canceled) {
			e.opts.logger().Warnf("%v", err)
		}
		delete(e.inDocker, n)
	}
}

// Close releases the project lock and the Docker connection. The
// environment itself keeps running.
func (e *Env) Close() {
	e.lock.release()
	if e.docker != nil {
		_ = e.docker.Close()
	}
}

// Selector is the label set every object devenv applies for cfg carries.
func Selector(cfg *config.Config) map[string]string {
	return map[string]string{templates.LabelProject: cfg.Name}
}

// Up brings the environment described by cfg up and waits until every
// service is ready. The cluster is created while the external containers
// start and the images build. The returned Env must be closed.
func Up(ctx context.Context, cfg *config.Config, opts Options) (*Env, error) {
	lg := opts.logger()
	lk, err := acquireLock(filepath.Join(cfg.Dir, ".devenv"), cfg.Name)
	if err != nil {
		return nil, err
	}
	env := &Env{Config: cfg, Images: map[string]string{}, opts: opts, prog: &progress{log: lg}, lock: lk,
		parts: map[string]*build.Assembled{}, inDocker: map[string]func() error{},
		known: map[string]*build.Assembled{}, recent: map[string][]string{}, content: map[string]string{}, stale: map[string]bool{}}
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
	if env.state, err = loadState(cfg); err != nil {
		return nil, err
	}

	done := env.prog.start("preparing the %s Docker network", cluster.NetworkName)
	env.network, err = cluster.EnsureNetwork(ctx, cluster.Options{Docker: env.docker, Log: lg.Slog()})
	done(err, "")
	if err != nil {
		return nil, err
	}

	// The cluster boots in the background while the rest runs.
	type clusterResult struct {
		c   *cluster.Cluster
		err error
	}
	clusterCh := make(chan clusterResult, 1)
	go func() {
		c, err := env.ensureCluster(ctx)
		clusterCh <- clusterResult{c, err}
	}()

	err = env.startExternal(ctx)
	if err == nil {
		err = env.buildAll(ctx)
	}
	// While kind runs kubeadm, the node's containerd already answers: load
	// the images then, so they are in place when the control plane is. A
	// cluster that is already up (reused) gets them from loadImages below.
	pctx, stopPreload := context.WithCancel(ctx)
	defer stopPreload()
	preloaded := make(chan struct{})
	var cr clusterResult
	select {
	case cr = <-clusterCh:
		close(preloaded)
	default:
		if err != nil {
			close(preloaded)
		} else {
			go func() {
				defer close(preloaded)
				env.preload(pctx)
			}()
		}
		cr = <-clusterCh
	}
	c, cerr := cr.c, cr.err
	if cerr != nil || err != nil {
		stopPreload()
	}
	<-preloaded
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	env.Cluster = c

	if err := env.loadImages(ctx, nil); err != nil {
		return nil, err
	}
	if err := env.apply(ctx); err != nil {
		return nil, err
	}
	if env.Kafka != nil && len(cfg.Kafka.Topics) > 0 {
		done := env.prog.start("creating Kafka topics")
		err := kafka.EnsureTopics(ctx, env.Kafka.HostAddress, kafkaTopics(cfg.Kafka))
		done(err, "")
		if err != nil {
			return nil, err
		}
	}
	if err := env.waitRollouts(ctx, nil); err != nil {
		return nil, err
	}
	ok = true
	return env, nil
}

func loadState(cfg *config.Config) (*build.State, error) {
	dir, err := build.StateDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	return build.LoadState(dir)
}

func (e *Env) ensureCluster(ctx context.Context) (*cluster.Cluster, error) {
	cfg := e.Config
	img, err := e.resolver.Resolve(ctx, cfg.Cluster.Image)
	if err != nil {
		return nil, fmt.Errorf("cluster.image: %w", err)
	}
	done := e.prog.start("cluster %s", cfg.Cluster.Name)
	copts := cluster.Options{Docker: e.docker, Log: e.opts.logger().Slog()}
	if e.opts.PrivilegedShim {
		if _, err := cluster.InstallPrivilegedShim(ctx, img.Ref, copts); err != nil {
			done(err, "")
			return nil, err
		}
	}
	c, res, err := cluster.Ensure(ctx, cluster.Spec{
		Name: cfg.Cluster.Name, Image: img.Ref, Kubeconfig: e.opts.Kubeconfig,
		Retain: e.opts.Retain,
	}, copts)
	done(err, "cluster %s %s (context %s)", cfg.Cluster.Name, res, contextOf(c))
	return c, err
}

func contextOf(c *cluster.Cluster) string {
	if c == nil {
		return ""
	}
	return c.Context
}

// startExternal ensures the Kafka and H2 containers on the kind network.
func (e *Env) startExternal(ctx context.Context) error {
	cfg := e.Config
	taken, err := cluster.TakenIPs(ctx, e.docker, e.network)
	if err != nil {
		return err
	}
	if k := cfg.Kafka; k != nil {
		img, err := e.resolver.Resolve(ctx, k.Image)
		if err != nil {
			return k.Pos.Errorf("kafka.image", "%v", err)
		}
		prev, found, err := kafka.Find(ctx, e.docker, cfg.Name)
		if err != nil {
			return err
		}
		ip, hostPort := e.placement(taken, found, prev.IP, prev.HostAddress, k.HostPort)
		if k.HostPort != 0 && (!found || prev.HostAddress != net.JoinHostPort("127.0.0.1", strconv.Itoa(k.HostPort))) && !portFree(k.HostPort) {
			return k.Pos.Errorf("kafka.hostPort", "port %d on 127.0.0.1 is in use by another program: choose another port, or 0 to let devenv pick one", k.HostPort)
		}
		if ip != "" {
			if a, err := netip.ParseAddr(ip); err == nil {
				taken = append(taken, a)
			}
		}
		cpu, mem, err := limits(k.Resources)
		if err != nil {
			return k.Pos.Errorf("kafka.resources", "%v", err)
		}
		done := e.prog.start("Kafka broker (%s)", img.Ref)
		ep, err := kafka.Ensure(ctx, kafka.Spec{
			Project: cfg.Name, Image: img.Ref, Network: e.network.Name,
			IP: ip, Port: k.Port, HostPort: hostPort, Env: k.Env, NanoCPUs: int64(cpu * 1e9), Memory: mem,
		}, kafka.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
		done(err, "Kafka broker at %s (pods: %s, host: %s)", ep.InternalAddress, k.Address(), ep.HostAddress)
		if err != nil {
			return err
		}
		e.Kafka = &ep
	}
	if h := cfg.H2; h.Mode == config.H2Server {
		img, err := e.resolver.Resolve(ctx, h.Image)
		if err != nil {
			return h.Pos.Errorf("h2.image", "%v", err)
		}
		prev, found, err := h2.Find(ctx, e.docker, cfg.Name)
		if err != nil {
			return err
		}
		ip, hostPort := e.placement(taken, found, prev.IP, prev.HostAddress, 0)
		done := e.prog.start("H2 server (%s)", img.Ref)
		ep, err := h2.Ensure(ctx, h2.Spec{
			Project: cfg.Name, Image: img.Ref, Network: e.network.Name,
			IP: ip, Port: h.Port, HostPort: hostPort,
		}, h2.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
		done(err, "H2 server at %s (host: %s)", ep.InternalAddress, ep.HostAddress)
		if err != nil {
			return err
		}
		e.H2 = &ep
	}
	return nil
}

// placement chooses a container's fixed IP on the kind network (kept from the
// running container when there is one) and its published host port.
func (e *Env) placement(taken []netip.Addr, found bool, prevIP, prevHost string, wantPort int) (ip string, hostPort int) {
	// The host port is chosen once and then kept: the running container's,
	// else a free one now, so every later up asks for the same spec.
	hostPort = wantPort
	if hostPort == 0 && found {
		if _, p, err := net.SplitHostPort(prevHost); err == nil {
			hostPort, _ = strconv.Atoi(p)
		}
	}
	if hostPort == 0 {
		hostPort = freePort()
	}
	if !e.network.FixedIPs {
		return "", hostPort
	}
	var preferred netip.Addr
	if found {
		preferred, _ = netip.ParseAddr(prevIP)
		// The container's own address is not taken by someone else.
		kept := taken[:0:0]
		for _, a := range taken {
			if a != preferred {
				kept = append(kept, a)
			}
		}
		taken = kept
	}
	a := cluster.PickIP(e.network, taken, preferred)
	if !a.IsValid() {
		return "", hostPort
	}
	return a.String(), hostPort
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

func kafkaTopics(k *config.Kafka) []kafka.Topic {
	out := make([]kafka.Topic, 0, len(k.Topics))
	for _, t := range k.Topics {
		out = append(out, kafka.Topic{Name: t.Name, Partitions: int32(t.Partitions), Config: t.Config})
	}
	return out
}

// buildAll builds every service's image, one after another (builds are CPU bound).
func (e *Env) buildAll(ctx context.Context) error {
	for _, s := range e.Config.Services {
		if _, _, err := e.buildService(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// buildService runs the service's prebuild and image build and records the
// resulting image. changed reports a new image (something to deploy).
func (e *Env) buildService(ctx context.Context, s *config.Service) (ref string, changed bool, err error) {
	lg := e.opts.logger()
	spec := build.Spec{
		Service: s.Name, Project: e.Config.Name, Context: s.Context, Dockerfile: s.Dockerfile,
		Args: s.Args, Prebuild: s.Prebuild, Watch: watchPatterns(s), Ignore: s.Ignore,
	}
	if len(s.Prebuild) > 0 {
		done := e.prog.start("%s: prebuild", s.Name)
		ran, err := build.Prebuild(ctx, spec, lg, e.state)
		if err == nil && !ran {
			done(nil, "%s: prebuild skipped (inputs unchanged)", s.Name)
		} else {
			done(err, "")
		}
		if err != nil {
			return "", false, err
		}
	}
	// The stand-in rule: FROM images (and build args naming images) that
	// cannot be pulled are replaced by their stand-ins in the context sent.
	df, err := os.ReadFile(s.Dockerfile)
	if err != nil {
		return "", false, s.Pos.Errorf("services."+s.Name+".dockerfile", "reading the Dockerfile: %v", err)
	}
	newDF, newArgs, notes, err := images.RewriteDockerfile(df, s.Args, e.resolver.Func(ctx))
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", s.Name, err)
	}
	for _, n := range notes {
		lg.Infof("%s: %s", s.Name, n)
	}
	spec.Args = newArgs
	e.waitDocker([]string{s.Name})
	done := e.prog.start("%s: image", s.Name)
	res, err := build.Image(ctx, e.docker, spec, build.ImageOptions{
		ContextOptions: build.ContextOptions{Dockerfile: newDF},
		Output:         e.opts.BuildOutput,
		Background:     e.watching,
		Live:           e.opts.Live,
	})
	if err != nil {
		done(err, "")
		return "", false, err
	}
	state := "built"
	if res.Cached {
		state = "unchanged"
	}
	done(nil, "%s: image %s %s", s.Name, res.Ref, state)
	if res.NoLive != "" {
		if !e.noLiveSaid {
			// Once: saves still work, only slower.
			lg.Infof("%s: %s", s.Name, res.NoLive)
			e.noLiveSaid = true
		} else {
			lg.Debugf("%s: %s", s.Name, res.NoLive)
		}
	}
	if res.Assembled != nil {
		e.remember(s.Name, res.Ref, res.Assembled)
	}
	prev := e.Images[s.Name]
	e.Images[s.Name] = res.Ref
	if res.Assembled != nil && prev != res.Ref {
		e.parts[s.Name] = res.Assembled
	} else {
		delete(e.parts, s.Name)
	}
	e.inDocker[s.Name] = res.DockerLoaded
	return res.Ref, prev != res.Ref, nil
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

// preload loads the services' images into the cluster's node while the
// cluster is still being created. It only saves time: what fails here is
// loaded again by loadImages.
func (e *Env) preload(ctx context.Context) {
	for _, s := range e.Config.Services {
		ref := e.Images[s.Name]
		done := e.prog.start("%s: loading %s into the cluster while it starts", s.Name, ref)
		loaded, err := cluster.Preload(ctx, cluster.PreloadSpec{Cluster: e.Config.Cluster.Name, Ref: ref, Timeout: 3 * time.Minute},
			cluster.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
		switch {
		case err != nil:
			done(nil, "%s: not preloaded (%v); loading it once the cluster is ready", s.Name, err)
		case !loaded:
			done(nil, "%s: the cluster already has %s", s.Name, ref)
		default:
			done(nil, "")
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// loadImages loads the services' images into the cluster's nodes (only
// those named, or all when names is nil), skipping what the nodes have.
func (e *Env) loadImages(ctx context.Context, names []string) error {
	if names != nil {
		// Images that were only written into running containers go too: a
		// rollout or a new pod needs them on the nodes.
		for n := range e.stale {
			if !contains(names, n) {
				names = append(names, n)
			}
		}
	}
	e.waitDocker(names)
	for _, s := range e.Config.Services {
		if names != nil && !contains(names, s.Name) {
			continue
		}
		ref := e.Images[s.Name]
		done := e.prog.start("%s: loading %s into the cluster", s.Name, ref)
		loaded, err := e.Cluster.LoadImage(ctx, e.docker, ref)
		if err == nil && !loaded {
			done(nil, "%s: the cluster already has %s", s.Name, ref)
		} else {
			done(err, "")
		}
		if err != nil {
			return err
		}
		delete(e.stale, s.Name)
	}
	return nil
}

// remember keeps an assembled image for live updates: the last few of
// each service.
func (e *Env) remember(service, ref string, a *build.Assembled) {
	const keep = 4
	if _, ok := e.known[ref]; ok {
		return
	}
	e.known[ref] = a
	r := append(e.recent[service], ref)
	for len(r) > keep {
		delete(e.known, r[0])
		r = r[1:]
	}
	e.recent[service] = r
}

// objects renders every object for the current state of the environment.
func (e *Env) objects() ([]*unstructured.Unstructured, error) {
	ips := map[string]string{}
	if e.Kafka != nil {
		ips[render.ComponentKafka] = e.Kafka.IP
	}
	if e.H2 != nil {
		ips[render.ComponentH2] = e.H2.IP
	}
	return render.Objects(e.Config, render.Options{ExternalIPs: ips, Images: e.Images, ShowSecrets: true})
}

// apply renders and applies everything, pruning what devenv.yaml no longer has.
func (e *Env) apply(ctx context.Context) error {
	objs, err := e.objects()
	if err != nil {
		return err
	}
	done := e.prog.start("applying %d objects to namespace %s", len(objs), e.Config.Namespace)
	res, err := e.Cluster.Apply(ctx, objs, cluster.ApplyOptions{Selector: Selector(e.Config), Prune: true})
	if err != nil {
		done(err, "")
		return err
	}
	e.LastApply = res
	done(nil, "applied: %d created, %d changed, %d unchanged, %d pruned",
		len(res.Created), len(res.Changed), len(res.Unchanged), len(res.Pruned))
	for _, w := range res.Warnings {
		if e.Config.Kafka != nil && e.Config.Kafka.Endpoints == config.EndpointsClassic && strings.Contains(w, "v1 Endpoints is deprecated") {
			// Asked for in devenv.yaml (endpoints: classic), as the seed shows it.
			e.opts.logger().Debugf("API server: %s (kafka.endpoints: classic asks for the v1 Endpoints object)", w)
			continue
		}
		e.opts.logger().Warnf("API server: %s", w)
	}
	return nil
}

// waitRollouts waits for the named services' Deployments (all when nil), all at once.
func (e *Env) waitRollouts(ctx context.Context, names []string) error {
	timeout := e.opts.rolloutTimeout()
	var wg sync.WaitGroup
	errs := make([]error, len(e.Config.Services))
	for i, s := range e.Config.Services {
		if names != nil && !contains(names, s.Name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := e.prog.start("%s: rollout", s.Name)
			err := e.Cluster.WaitRollout(ctx, e.Config.Namespace, s.Name, timeout)
			done(err, "%s ready", s.Name)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
