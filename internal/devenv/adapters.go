package devenv

// This file holds every call that Up and the watch loop make into the peers
// cluster, kafka, h2 and internal/build: the loop's interfaces (loop.go)
// are implemented here on top of them, and Up's steps that only drive a
// peer live here too. A change to a peer's API is a change to this file.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/render"
	"github.com/devenv-tool/devenv/internal/ui"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
	"github.com/devenv-tool/devenv/registry"
)

// clusterOps is the loop's liveUpdater, swapper, loader and deployer on a
// kind cluster.
type clusterOps struct {
	c      *cluster.Cluster
	docker *client.Client
	// On a cluster devenv did not create: prune only in namespace, and
	// create (and later delete) only a namespace marked as owner's.
	namespace, owner string
	// via is how live updates reach containers: through the API (exec) on
	// a cluster devenv did not create, whose nodes are not devenv's to
	// enter; the default (the node on kind) otherwise.
	via cluster.LiveVia
}

func (o clusterOps) LiveTargets(ctx context.Context, namespace, service string) ([]cluster.LiveTarget, error) {
	return o.c.LiveTargets(ctx, namespace, service, service)
}

func (o clusterOps) LiveUpdate(ctx context.Context, t cluster.LiveTarget, files []byte, removed []string, port int, timeout time.Duration) error {
	return o.c.LiveUpdate(ctx, o.docker, cluster.LiveChange{Target: t, Files: files, Removed: removed, Port: port, Timeout: timeout, Via: o.via})
}

func (o clusterOps) SwapImage(ctx context.Context, namespace, service, ref string, timeout time.Duration) error {
	return o.c.SwapImages(ctx, namespace, service, map[string]string{service: ref}, timeout)
}

func (o clusterOps) LoadParts(ctx context.Context, ref string, a *build.Assembled) error {
	parts := cluster.ImageParts{Config: a.Config}
	for _, l := range a.Layers {
		data := l.Data
		if data == nil && l.Path != "" {
			// Stored on disk while the loop held the image: read for this
			// load only.
			var err error
			if data, err = os.ReadFile(l.Path); err != nil {
				return fmt.Errorf("reading a stored layer: %w", err)
			}
		}
		parts.Layers = append(parts.Layers, cluster.LayerPart{DiffID: l.DiffID, Size: l.Size, Data: data})
	}
	return o.c.LoadParts(ctx, o.docker, ref, parts)
}

func (o clusterOps) LoadImage(ctx context.Context, ref string) (bool, error) {
	return o.c.LoadImage(ctx, o.docker, ref)
}

func (o clusterOps) MissingImages(ctx context.Context, refs []string) ([]string, error) {
	// The nodes' status first (one API request): on a warm up it lists
	// every image; only what it does not list is asked of the nodes.
	unlisted, err := o.c.Unlisted(ctx, refs)
	if err != nil {
		unlisted = refs
	}
	if len(unlisted) == 0 {
		return nil, nil
	}
	return o.c.MissingImages(ctx, o.docker, unlisted)
}

func (o clusterOps) Apply(ctx context.Context, objs []*unstructured.Unstructured, selector map[string]string) (cluster.ApplyResult, error) {
	return o.c.Apply(ctx, objs, cluster.ApplyOptions{Selector: selector, Prune: true, Namespace: o.namespace, NamespaceOwner: o.owner})
}

func (o clusterOps) Unchanged(ctx context.Context, objs []*unstructured.Unstructured, selector, versions map[string]string) (bool, error) {
	return o.c.Unchanged(ctx, objs, selector, versions)
}

func (o clusterOps) WaitRollout(ctx context.Context, namespace, name string, timeout time.Duration) error {
	return o.c.WaitRollout(ctx, namespace, name, timeout)
}

func (o clusterOps) RolledOut(ctx context.Context, namespace string, names []string) (map[string]bool, error) {
	return o.c.RolledOut(ctx, namespace, names)
}

// pruneLayers removes the stored layer files in dir that no image of keep
// holds (build.PruneLayers).
func pruneLayers(dir string, keep []*build.Assembled) error {
	return build.PruneLayers(dir, keep)
}

// liveDiff is build.LiveDiff: what turns a container holding from's files
// into one holding to's, or why that cannot be done in place.
func liveDiff(from, to *build.Assembled) (build.Changes, error) {
	return build.LiveDiff(from, to)
}

// dockerFinder finds the external containers in Docker.
type dockerFinder struct {
	docker  *client.Client
	project string
}

func (f dockerFinder) FindIP(ctx context.Context, component string) (ip string, found bool, err error) {
	switch component {
	case render.ComponentKafka:
		ep, found, err := kafka.Find(ctx, f.docker, f.project)
		return ep.IP, found, err
	case render.ComponentH2:
		ep, found, err := h2.Find(ctx, f.docker, f.project)
		return ep.IP, found, err
	}
	return "", false, fmt.Errorf("no external component %q", component)
}

// imageBuilder is the loop's builder: the service's prebuild, the
// stand-in rule, then build.Image.
type imageBuilder struct {
	project  string
	registry string // HOST[:PORT][/PREFIX] images are named in; "" for devenv.local
	docker   *client.Client
	resolver *images.Resolver
	state    *build.State
	opts     Options
	prog     *progress
	// bundledSaid holds the services whose use of a bundled image was
	// said (fromBundle says it once); nil: say it each time.
	bundledSaid *sync.Map
}

func (b imageBuilder) Build(ctx context.Context, s *config.Service, o buildOptions) (built, error) {
	lg := b.opts.logger()
	if o.Quiet {
		if !lg.Verbose() {
			lg = log.Nop()
		}
		b.prog = &progress{log: lg}
	}
	spec := b.spec(s)
	if len(s.Prebuild) > 0 {
		if res, ok, err := b.fromBundle(ctx, s, spec, lg); ok || err != nil {
			return res, err
		}
		st := b.prog.begin(stepPrebuild, "%s: prebuild", s.Name)
		ran, err := build.Prebuild(ctx, spec, lg, b.state)
		if err == nil && !ran {
			st.kind = "" // checking the inputs: devenv's own time
			st.end(nil, "%s: prebuild skipped (inputs unchanged)", s.Name)
		} else {
			st.end(err, "")
		}
		if err != nil {
			return built{}, err
		}
	}
	// The stand-in rule: FROM images (and build args naming images) that
	// cannot be pulled are replaced by their stand-ins in the context sent.
	df, err := os.ReadFile(s.Dockerfile)
	if err != nil {
		return built{}, s.Pos.Errorf("services."+s.Name+".dockerfile", "reading the Dockerfile: %v", err)
	}
	newDF, newArgs, notes, err := images.RewriteDockerfile(df, s.Args, b.resolver.Func(ctx))
	if err != nil {
		return built{}, fmt.Errorf("%s: %w", s.Name, err)
	}
	for _, n := range notes {
		lg.Infof("%s: %s", s.Name, n)
	}
	spec.Args = newArgs
	if o.BeforeImage != nil {
		o.BeforeImage()
	}
	done := b.prog.begin(stepImage, "%s: image", s.Name).end
	res, err := build.Image(ctx, b.docker, spec, build.ImageOptions{
		ContextOptions: build.ContextOptions{Dockerfile: newDF},
		Output:         b.opts.BuildOutput,
		Background:     o.Background,
		Live:           b.opts.Live,
		State:          b.state,
		Quick:          o.Quick,
		Changed:        o.Changed,
	})
	if err != nil {
		done(err, "")
		return built{}, err
	}
	state := "built"
	if res.Cached {
		state = "unchanged"
	}
	done(nil, "%s: image %s %s", s.Name, res.Ref, state)
	return built{Ref: res.Ref, Assembled: res.Assembled, NoLive: res.NoLive, DockerLoaded: res.DockerLoaded, Cached: res.Cached}, nil
}

// spec is the build spec of service s (its build args as devenv.yaml gives
// them, before the stand-in rule).
func (b imageBuilder) spec(s *config.Service) build.Spec {
	return build.Spec{
		Service: s.Name, Project: b.project, Context: s.Context, Dockerfile: s.Dockerfile,
		Args: s.Args, Prebuild: s.Prebuild, Watch: watchPatterns(s), Ignore: s.Ignore,
		Registry: b.registry,
	}
}

// fromBundle is Build on a machine without the prebuild's toolchain
// (build.Toolchain, not on PATH) when the prebuild would run: the image a
// loaded bundle holds of these very sources (build.SourcesHash) is used
// instead, without a prebuild or a context build (their outputs are not
// there). ok is false, with no error, where Build goes on as always: the
// toolchain is there, none is known, or the prebuild is current.
func (b imageBuilder) fromBundle(ctx context.Context, s *config.Service, spec build.Spec, lg *log.Logger) (res built, ok bool, err error) {
	f := bundleFacts{Service: s.Name, Tool: build.Toolchain(spec), Command: strings.Join(s.Prebuild, " ")}
	if f.Tool == "" {
		return built{}, false, nil
	}
	if _, err := exec.LookPath(f.Tool); err == nil {
		return built{}, false, nil
	}
	if current, err := build.PrebuildCurrent(spec, b.state); err != nil || current {
		return built{}, false, err
	}
	sources, err := build.SourcesHash(spec)
	if err != nil {
		return built{}, false, err
	}
	records, err := build.BundleRecords(ctx, b.docker, b.project)
	if err != nil {
		return built{}, false, err
	}
	f.Matching, f.Recorded = build.Matching(records, s.Name, sources)
	for _, ref := range f.Matching {
		use, present, err := build.UseBundled(ctx, b.docker, spec, ref)
		if err != nil {
			return built{}, false, err
		}
		if present {
			f.Present = use
			break
		}
	}
	lg.Debugf("%s: %s is not on PATH; sources %s; bundled images of them: %v (in Docker: %q)", s.Name, f.Tool, sources[:12], f.Matching, f.Present)
	ref, err := decideBundled(f)
	if err != nil {
		return built{}, false, s.Pos.Errorf("services."+s.Name+".prebuild", "%v", err)
	}
	if b.bundledSaid == nil {
		lg.Infof("%s", bundledNote(f))
	} else if _, said := b.bundledSaid.LoadOrStore(s.Name, true); !said {
		lg.Infof("%s", bundledNote(f))
	}
	b.prog.begin(stepImage, "%s: image", s.Name).end(nil, "%s: image %s from the bundle", s.Name, ref)
	return built{Ref: ref, Cached: true}, true, nil
}

func loadState(cfg *config.Config) (*build.State, error) {
	dir, err := build.StateDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	return build.LoadState(dir)
}

// attachCluster gives the loop the cluster Up created or reused.
func (e *Env) attachCluster(c *cluster.Cluster) {
	e.Cluster = c
	ops := clusterOps{c: c, docker: e.docker}
	if existing(e.Config) {
		ops.namespace, ops.owner, ops.via = e.Config.Namespace, projectKey(e.Config), cluster.LiveExec
	}
	e.loop.live, e.loop.swapper, e.loop.loader, e.loop.deployer = ops, ops, ops, ops
	e.loop.pingCluster = c.Ping
	if runsContainers(e.Config) || !existing(e.Config) {
		// The environment runs on this Docker engine: while watching, say
		// when it stops answering and when it is back.
		e.loop.pingDocker = func(ctx context.Context) error {
			_, err := e.docker.Ping(ctx, client.PingOptions{})
			return err
		}
		e.loop.startStopped = func(ctx context.Context) ([]string, error) {
			return dockerx.StartStopped(ctx, e.docker, project.LabelProject+"="+projectKey(e.Config))
		}
	}
	if e.Config.Registry != nil {
		// The nodes pull from the registry: images are pushed there, an
		// assembled one from its own layers.
		e.loop.loader = newRegistryOps(ops, e.Config, e.state, e.opts.logger())
		e.loop.pushParts = true
	}
}

// prepareLoads tells the cluster, ahead of the first save, what loading new
// layers needs to know.
func (e *Env) prepareLoads(ctx context.Context) error {
	return e.Cluster.PrepareLoads(ctx, e.docker)
}

func (e *Env) ensureNetwork(ctx context.Context) (err error) {
	e.network, err = cluster.EnsureNetwork(ctx, cluster.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
	return err
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
	e.freshCluster = err == nil && res != cluster.Reused
	return c, err
}

// useExisting connects to the cluster of cluster.context, which devenv did
// not create and never deletes, and checks before anything is done there
// that the API answers, that the user may do what devenv needs in the
// namespace, and that the images can reach the nodes. A cluster that is
// not kind on this engine and has no registry: in devenv.yaml may name one
// in its KEP-1755 ConfigMap (kube-public/local-registry-hosting): then the
// returned config is a copy of e.Config that uses it.
func (e *Env) useExisting(ctx context.Context) (*cluster.Cluster, *config.Config, error) {
	cfg := e.Config
	done := e.prog.start("connecting to context %s", cfg.Cluster.Context)
	c, err := cluster.ConnectExisting(ctx, cfg.Cluster.Context, kubeconfigOf(cfg, e.opts), cluster.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
	if err != nil {
		err = fmt.Errorf("cluster.context: %w", err)
		done(err, "")
		return nil, nil, err
	}
	if err = c.CheckAccess(ctx, cfg.Namespace, cluster.ProjectAccess); err == nil {
		cfg = withHostedRegistry(ctx, cfg, c, e.opts.logger())
		err = existingFits(cfg, c)
	}
	how := "not a kind cluster on this Docker engine"
	if c.Kind {
		how = "kind cluster " + c.Name + " on this Docker engine"
	}
	if cfg.Registry != nil {
		how += ", images through registry " + registryPrefix(cfg)
	}
	done(err, "context %s: Kubernetes %s, %s", cfg.Cluster.Context, c.ServerVersion, how)
	if err != nil {
		return nil, nil, err
	}
	return c, cfg, nil
}

// withHostedRegistry is cfg, or, when c is not kind on this engine and
// devenv.yaml names no registry, a copy of cfg that uses the registry c
// names in its KEP-1755 ConfigMap (when it names one).
func withHostedRegistry(ctx context.Context, cfg *config.Config, c *cluster.Cluster, lg *log.Logger) *config.Config {
	if c.Kind || cfg.Registry != nil {
		return cfg
	}
	r := hostedRegistry(ctx, c, lg)
	if r == nil {
		return cfg
	}
	cp := *cfg
	cp.Registry = r
	return &cp
}

// hostedRegistry reads the registry a cluster names in its KEP-1755
// ConfigMap, or nil.
func hostedRegistry(ctx context.Context, c *cluster.Cluster, lg *log.Logger) *config.Registry {
	cm, err := c.Client.CoreV1().ConfigMaps(registry.HostingNamespace).Get(ctx, registry.HostingName, metav1.GetOptions{})
	if err != nil {
		lg.Debugf("no %s/%s ConfigMap: %v", registry.HostingNamespace, registry.HostingName, err)
		return nil
	}
	h, err := registry.ParseHostingConfigMap(cm)
	if err != nil {
		lg.Warnf("ignoring the cluster's registry ConfigMap: %v", err)
		return nil
	}
	lg.Infof("the cluster names its registry in %s/%s: %s", registry.HostingNamespace, registry.HostingName, h.Host)
	return &config.Registry{Host: h.Host}
}

// existingFits says what devenv.yaml lacks to run on c, a cluster devenv
// did not create: images reach a cluster that is not kind on this Docker
// engine only through a registry, and its pods cannot reach the containers
// devenv runs here.
func existingFits(cfg *config.Config, c *cluster.Cluster) error {
	if c.Kind {
		return nil
	}
	var errs []error
	if cfg.Registry == nil {
		errs = append(errs, fmt.Errorf("context %s is not a kind cluster on this Docker engine, so devenv cannot load images into its nodes: add registry: HOST[:PORT][/PREFIX] to %s (a registry its nodes pull from)", cfg.Cluster.Context, cfg.Files[0]))
	}
	if cfg.Kafka != nil && !externalKafka(cfg) {
		errs = append(errs, fmt.Errorf("context %s cannot reach the Kafka container devenv runs on this machine: set kafka.external: HOST:PORT in %s to a broker the cluster reaches", cfg.Cluster.Context, cfg.Files[0]))
	}
	if cfg.H2.Mode == config.H2Server && !externalH2(cfg) {
		errs = append(errs, fmt.Errorf("context %s cannot reach the H2 container devenv runs on this machine: set h2.external: HOST:PORT in %s, or use h2 in memory mode", cfg.Cluster.Context, cfg.Files[0]))
	}
	return errors.Join(errs...)
}

// prePull, on a cluster this Up created that pulls from the local
// registry, has its nodes pull the services' images in the background
// while the apply and waitControllers run: the controller manager of a new
// cluster makes no pod for seconds, and the pods then start without
// pulling (a 300 MB Java image took 2.3 s to pull at its pod's start).
// The returned function stops the pulls and waits for them; Up calls it
// when it returns (its pods are Ready then, so their images are there).
// A failed pull is only said with -v: the pods pull what is missing.
func (e *Env) prePull(ctx context.Context) (wait func()) {
	cfg := e.Config
	if !e.freshCluster || cfg.Registry == nil || !cfg.Registry.Local || e.Cluster == nil || !e.Cluster.Kind {
		return func() {}
	}
	var refs []string
	for _, s := range cfg.Services {
		if ref := e.Images[s.Name]; ref != "" {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	lg := e.opts.logger()
	go func() {
		defer close(done)
		t0 := time.Now()
		if err := e.Cluster.PullOnNodes(ctx, e.docker, refs); err != nil {
			if ctx.Err() == nil {
				lg.Debugf("pulling the images on the nodes ahead of their pods: %v", err)
			}
			return
		}
		named := refs
		if len(named) > 3 {
			named = append(slices.Clip(named[:3]), fmt.Sprintf("and %d more", len(refs)-3))
		}
		lg.Debugf("ahead of their pods, the nodes pulled %s in %s", strings.Join(named, ", "), time.Since(t0).Round(time.Millisecond))
	}()
	return func() {
		// Up returns: its pods have their images, or it failed.
		cancel()
		<-done
	}
}

// waitControllers waits, on a cluster this Up created, until its
// controller manager has taken up the services' Deployments: it starts its
// controllers seconds after kind returns, and until then no pod is made.
// A step of its own, so that the progress lines and the steps an Observer
// gets say where a cold up's time goes.
func (e *Env) waitControllers(ctx context.Context) error {
	if !e.freshCluster || len(e.Config.Services) == 0 {
		return nil
	}
	done := e.prog.start("cluster controllers")
	err := e.Cluster.WaitControllers(ctx, e.Config.Namespace, serviceNames(e.Config), e.opts.rolloutTimeout())
	done(err, "")
	return err
}

// waitClusterDNS waits, on a cluster this Up created, until its DNS
// (kube-system/coredns) is rolled out: the services are "ready" for tests
// only when their names resolve. On a just-created cluster a pod's first
// lookups can otherwise get "no such host" for a while.
func (e *Env) waitClusterDNS(ctx context.Context) error {
	if !e.freshCluster {
		return nil
	}
	done := e.prog.start("cluster DNS")
	err := e.Cluster.WaitRollout(ctx, "kube-system", "coredns", e.opts.rolloutTimeout())
	done(err, "")
	return err
}

// startExternal ensures the Kafka and H2 containers on the kind network.
func (e *Env) startExternal(ctx context.Context) error {
	cfg := e.Config
	var taken []netip.Addr
	if runsContainers(cfg) {
		var err error
		if taken, err = cluster.TakenIPs(ctx, e.docker, e.network); err != nil {
			return err
		}
	}
	if k := cfg.Kafka; k != nil && k.External != "" {
		e.Kafka = e.externalKafka(ctx, k)
	} else if k != nil {
		img, err := e.resolver.Resolve(ctx, k.Image)
		if err != nil {
			return k.Pos.Errorf("kafka.image", "%v", err)
		}
		prev, found, err := kafka.Find(ctx, e.docker, projectKey(cfg))
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
		var ep kafka.Endpoint
		for attempt := 1; ; attempt++ {
			ep, err = kafka.Ensure(ctx, kafka.Spec{
				Project: projectKey(cfg), Image: img.Ref, Network: e.network.Name,
				IP: ip, Port: k.Port, HostPort: hostPort, Env: k.Env, NanoCPUs: int64(cpu * 1e9), Memory: mem,
			}, kafka.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
			var again bool
			if ip, taken, again = e.addressTaken(ctx, err, attempt, ip, taken); !again {
				break
			}
		}
		done(err, "Kafka broker at %s (pods: %s, host: %s)", ep.InternalAddress, k.Address(), ep.HostAddress)
		if err != nil {
			return err
		}
		e.Kafka = &ep
	}
	if h := cfg.H2; h.External != "" {
		e.H2 = externalH2Endpoint(h)
		e.prog.log.Infof("✓ H2 server at %s, run by someone else (h2.external)", h.External)
	} else if h.Mode == config.H2Server {
		img, err := e.resolver.Resolve(ctx, h.Image)
		if err != nil {
			return h.Pos.Errorf("h2.image", "%v", err)
		}
		prev, found, err := h2.Find(ctx, e.docker, projectKey(cfg))
		if err != nil {
			return err
		}
		ip, hostPort := e.placement(taken, found, prev.IP, prev.HostAddress, 0)
		done := e.prog.start("H2 server (%s)", img.Ref)
		var ep h2.Endpoint
		for attempt := 1; ; attempt++ {
			ep, err = h2.Ensure(ctx, h2.Spec{
				Project: projectKey(cfg), Image: img.Ref, Network: e.network.Name,
				IP: ip, Port: h.Port, HostPort: hostPort,
			}, h2.Options{Docker: e.docker, Log: e.opts.logger().Slog()})
			var again bool
			if ip, taken, again = e.addressTaken(ctx, err, attempt, ip, taken); !again {
				break
			}
		}
		done(err, "H2 server at %s (host: %s)", ep.InternalAddress, ep.HostAddress)
		if err != nil {
			return err
		}
		e.H2 = &ep
	}
	return nil
}

// externalKafka is the endpoint of kafka.external, a broker devenv does not
// run: pods reach it through the Service devenv renders for it. When this
// machine reaches it too (it answers the Kafka protocol within a few
// seconds), its address is the host address, so topics are created and
// tests get a bootstrap address; otherwise that is said once, and up goes
// on without both.
func (e *Env) externalKafka(ctx context.Context, k *config.Kafka) *kafka.Endpoint {
	ep := externalKafkaEndpoint(k)
	done := e.prog.start("Kafka broker at %s (kafka.external)", k.External)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := kafka.EndOffsets(rctx, k.External); err != nil {
		done(nil, "Kafka broker at %s, run by someone else (kafka.external): this machine cannot reach it (%v), so devenv creates no topics and checks nothing there; pods reach it as %s", k.External, err, k.Address())
		return ep
	}
	ep.HostAddress = k.External
	done(nil, "Kafka broker at %s, run by someone else (kafka.external; pods: %s)", k.External, k.Address())
	return ep
}

// externalKafkaEndpoint is the endpoint of kafka.external as the config
// gives it, without a host address (set once the host reaches it).
func externalKafkaEndpoint(k *config.Kafka) *kafka.Endpoint {
	_, port := k.ExternalHostPort()
	ep := &kafka.Endpoint{Port: port, InternalAddress: k.External}
	if a, ok := k.ExternalIP(); ok {
		ep.IP = a.String()
	}
	return ep
}

// externalH2Endpoint is the endpoint of h2.external, a server devenv does
// not run.
func externalH2Endpoint(h config.H2) *h2.Endpoint {
	_, port := h.ExternalHostPort()
	ep := &h2.Endpoint{Port: port, InternalAddress: h.External, HostAddress: h.External, Running: true}
	if a, ok := h.ExternalIP(); ok {
		ep.IP = a.String()
	}
	return ep
}

// addressTaken handles a container start that failed because another
// container (another project's up, at the same moment) took the fixed IP
// chosen for it: it picks another free address and says to try again (at
// most three times). Any other outcome ends the attempts.
func (e *Env) addressTaken(ctx context.Context, err error, attempt int, ip string, was []netip.Addr) (string, []netip.Addr, bool) {
	if err == nil || attempt >= 3 || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
		return ip, was, false
	}
	taken, terr := cluster.TakenIPs(ctx, e.docker, e.network)
	if terr != nil {
		return ip, was, false
	}
	if a, perr := netip.ParseAddr(ip); perr == nil {
		taken = append(taken, a)
	}
	next, _ := e.placement(taken, false, "", "", 0)
	if next == "" || next == ip {
		return ip, was, false
	}
	if a, perr := netip.ParseAddr(next); perr == nil {
		taken = append(taken, a) // the next container must not take it either
	}
	e.opts.logger().Infof("address %s was taken by another container meanwhile: using %s", ip, next)
	return next, taken, true
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

// ensureTopics creates the configured Kafka topics.
func (e *Env) ensureTopics(ctx context.Context) error {
	if e.Kafka == nil || e.Kafka.HostAddress == "" || len(e.Config.Kafka.Topics) == 0 {
		return nil
	}
	done := e.prog.start("creating Kafka topics")
	err := kafka.EnsureTopics(ctx, e.Kafka.HostAddress, kafkaTopics(e.Config.Kafka))
	done(err, "")
	return err
}

func kafkaTopics(k *config.Kafka) []kafka.Topic {
	out := make([]kafka.Topic, 0, len(k.Topics))
	for _, t := range k.Topics {
		out = append(out, kafka.Topic{Name: t.Name, Partitions: int32(t.Partitions), Config: t.Config})
	}
	return out
}

// preload loads the services' images into the cluster's node (or pushes
// them to the registry its nodes will pull from) while the cluster is still
// being created. It only saves time: what fails here is loaded again by
// loadImages.
func (e *Env) preload(ctx context.Context) {
	if existing(e.Config) {
		return // a cluster that is up already
	}
	if e.Config.Registry != nil {
		// The nodes will pull from the registry, which needs no cluster:
		// push now. loadImages, once the cluster is up, finds them there.
		l := e.loop
		loader, pushParts := l.loader, l.pushParts
		l.loader, l.pushParts = newRegistryOps(clusterOps{docker: e.docker}, e.Config, e.state, e.opts.logger()), true
		defer func() { l.loader, l.pushParts = loader, pushParts }()
		if err := l.loadImages(ctx, nil); err != nil && ctx.Err() == nil {
			e.opts.logger().Infof("not pushed while the cluster starts (%v); pushing once it is ready", err)
		}
		return
	}
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

// kafkaView reads the broker at addr for the browser view (ui.Kafka).
type kafkaView struct{ addr string }

func (k kafkaView) Topics(ctx context.Context) ([]ui.Topic, error) {
	offs, err := kafka.EndOffsets(ctx, k.addr)
	if err != nil {
		return nil, err
	}
	out := make([]ui.Topic, 0, len(offs))
	for _, name := range config.SortedKeys(offs) {
		t := ui.Topic{Name: name, EndOffsets: []int64{}}
		for _, p := range offs[name] {
			t.EndOffsets = append(t.EndOffsets, p.Offset)
		}
		out = append(out, t)
	}
	return out, nil
}

func (k kafkaView) Tail(ctx context.Context, topic string, back int64, each func(ui.Record)) error {
	return kafka.Tail(ctx, k.addr, topic, back, func(r kafka.Record) {
		each(ui.Record{Partition: r.Partition, Offset: r.Offset, Time: r.Time,
			Key: ui.Clip(string(r.Key), ui.MaxValue), Value: ui.Clip(string(r.Value), ui.MaxValue), Cut: len(r.Value) > ui.MaxValue})
	})
}
