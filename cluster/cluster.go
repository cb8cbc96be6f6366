package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/registry"
)

// DefaultWait is how long Ensure waits for the control plane when Spec.Wait is 0.
const DefaultWait = 3 * time.Minute

// kindClusterLabel is the label kind puts on node containers.
const kindClusterLabel = "io.x-k8s.kind.cluster"

// ErrNoCluster is returned (wrapped) by Connect when the cluster does not exist
// or the kubeconfig has no context for it.
var ErrNoCluster = errors.New("no such cluster")

// Spec describes the cluster devenv wants.
type Spec struct {
	Name  string // kind cluster name; the kubeconfig context is kind-<Name>
	Image string // node image, e.g. devenv.local/kind-node:v1.37.2
	// Kubeconfig is the file the context is merged into; "" means the default
	// one, chosen as kind does ($KUBECONFIG, else ~/.kube/config).
	Kubeconfig string
	Wait       time.Duration // control plane readiness wait; 0 means DefaultWait
	Retain     bool          // keep the node containers of a failed create for debugging
}

// Result says what Ensure did.
type Result string

// The outcomes of Ensure.
const (
	Created   Result = "created"
	Reused    Result = "reused"
	Recreated Result = "recreated"
)

// Cluster is a connection to a running cluster: a kind cluster (Ensure,
// Connect) or any cluster devenv did not create (ConnectExisting).
type Cluster struct {
	// Name is the kind cluster's name; "" for a cluster that is not a kind
	// cluster on this Docker engine.
	Name       string
	Kubeconfig string // the kubeconfig file given by the caller; "" for the default
	Context    string // the kubeconfig context: kind-<Name> for kind
	// Kind says the nodes are kind containers on this Docker engine: images
	// load straight into their containerd. False for any other cluster.
	Kind bool
	// Existing says devenv did not create the cluster (ConnectExisting): it
	// never deletes it.
	Existing bool
	// ServerVersion is the API server's version (ConnectExisting), e.g. v1.37.2.
	ServerVersion string
	REST          *rest.Config
	Client        kubernetes.Interface
	Dynamic       dynamic.Interface
	Mapper        meta.RESTMapper

	log      *log.Logger
	provider *kindcluster.Provider
	partsMu  sync.Mutex
	parts    *partsState // LoadParts' memory
	nodes    nodeCopies  // LiveUpdate's memory of the nodes
}

// Ensure makes the cluster exist and answer: it creates it if missing, reuses
// it if its node containers run and its API server answers /readyz, and
// deletes and recreates it when it is broken (nodes stopped or gone, another
// node image, or the API server silent). A cluster whose nodes run but whose
// kubeconfig entry is missing or stale gets the entry written again first, and
// is only recreated if it still does not answer.
//
// Ensure records in opts.StateDir that it is creating a cluster before kind's
// create and that the cluster is complete after it returns, so a cluster left
// half-created (devenv killed during the create) is deleted and created again
// instead of being reused with a node that never takes pods. A cluster with no
// record, such as the user's own kind cluster, is judged by its health alone.
//
// On a cluster it creates, Ensure has the cluster DNS's readiness probe look
// every second instead of every 10 (kube-system/coredns), so that DNS is
// known to answer seconds sooner; a cluster it reuses is left as it is.
//
// On an engine that refuses --privileged it needs InstallPrivilegedShim to
// have been called (see ErrShimNeeded). kind's calls cannot be cancelled: ctx
// is checked between steps.
func Ensure(ctx context.Context, spec Spec, opts Options) (*Cluster, Result, error) {
	lg := log.FromSlog(opts.Log)
	if spec.Name == "" {
		return nil, "", errors.New("ensuring cluster: the cluster name is empty")
	}
	if spec.Image == "" {
		return nil, "", fmt.Errorf("ensuring cluster %q: no node image given", spec.Name)
	}
	docker, closeDocker, err := opts.docker(ctx)
	if err != nil {
		return nil, "", err
	}
	defer closeDocker()
	provider := newProvider(lg)
	recs, err := opts.records()
	if err != nil {
		return nil, "", fmt.Errorf("ensuring cluster %q: %w", spec.Name, err)
	}
	engine, err := engineID(ctx, docker)
	if err != nil {
		return nil, "", fmt.Errorf("ensuring cluster %q: %w", spec.Name, err)
	}
	rec, err := recs.read(engine, spec.Name)
	if err != nil {
		return nil, "", err
	}

	state, err := inspectState(ctx, docker, spec)
	if err != nil {
		return nil, "", err
	}
	// Deleting a half-created cluster is safe only if no other devenv is
	// creating it at this moment. Within one project devenv's project lock
	// already guarantees that (a second run for the project stops at the
	// lock before it gets here), since a project names its cluster in its
	// own file and devenv calls Ensure only with the lock held. Two projects
	// that name the same cluster, or programs using this package directly,
	// share no lock: for them the record keeps the creating process's ID,
	// and a record whose process still runs means "busy", never
	// "half-created".
	verdict := judge(rec, state.ids, processAlive)
	result := Created
	switch {
	case verdict == creatingNow:
		return nil, "", fmt.Errorf("ensuring cluster %q: process %d is creating it right now (since %s): wait for it to finish or stop it (if no devenv runs, delete %s)",
			spec.Name, rec.PID, rec.Started.Format(time.TimeOnly), recs.path(engine, spec.Name))
	case state.nodes == 0 && !state.contextExists:
		// nothing there
	case verdict == halfCreated:
		lg.Infof("cluster %s was left half-created (devenv was stopped while creating it): creating it again", spec.Name)
		result = Recreated
	case verdict == failedKept:
		lg.Infof("cluster %s was kept after a failed create (--retain): creating it again", spec.Name)
		result = Recreated
	case state.nodes == 0:
		lg.Infof("cluster %q is in the kubeconfig but its node containers are gone: recreating it", spec.Name)
		result = Recreated
	case state.staleImage != "":
		lg.Infof("cluster %q %s: recreating it", spec.Name, state.staleImage)
		result = Recreated
	case state.stopped > 0:
		lg.Infof("cluster %q has %d stopped node container(s): recreating it", spec.Name, state.stopped)
		result = Recreated
	default:
		c, err := connect(spec.Name, spec.Kubeconfig, lg, provider)
		if err == nil {
			err = c.ready(ctx, 5*time.Second)
		}
		if err != nil {
			// The kubeconfig entry may be missing or stale (another file, an
			// old port): write it again from the node and check once more.
			lg.Infof("cluster %q does not answer through its kubeconfig entry (%v): writing the entry again", spec.Name, err)
			c, err = reexport(ctx, docker, provider, spec, lg)
		}
		if err == nil {
			lg.Infof("reusing cluster %q (context %s)", spec.Name, c.Context)
			return c, Reused, nil
		}
		lg.Infof("cluster %q does not answer (%v): recreating it", spec.Name, err)
		result = Recreated
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if result == Recreated {
		if err := deleteNodes(ctx, provider, docker, spec.Name, spec.Kubeconfig, lg); err != nil {
			return nil, "", fmt.Errorf("deleting broken cluster %q: %w", spec.Name, err)
		}
	}

	if _, err := docker.ImageInspect(ctx, spec.Image); err != nil {
		return nil, "", fmt.Errorf("node image %s is not in Docker (%v): build it first (devenv builds its stand-in images with `devenv images build`); it cannot be pulled on an offline machine", spec.Image, err)
	}
	if _, err := ensureNetwork(ctx, docker, lg); err != nil {
		return nil, "", err
	}
	if _, err := ensurePrivileged(ctx, docker, spec.Image, lg); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	wait := spec.Wait
	if wait == 0 {
		wait = DefaultWait
	}
	lg.Infof("creating cluster %q from %s (waiting up to %s for the control plane)", spec.Name, spec.Image, wait)
	start := time.Now()
	rec = &record{
		Cluster: spec.Name, Engine: engine, State: recCreating, Kubeconfig: spec.Kubeconfig,
		PID: os.Getpid(), Started: start.UTC().Truncate(time.Second),
	}
	rec.PIDStart, _ = processStart(rec.PID)
	if err := recs.write(*rec); err != nil {
		return nil, "", err
	}
	// Note the node container as soon as kind makes it, so a later Ensure
	// knows the half-created nodes are the ones this create made.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		noteNode(watchCtx, docker, recs, *rec, lg)
	}()
	err = provider.Create(spec.Name,
		kindcluster.CreateWithV1Alpha4Config(singleNodeConfig()),
		kindcluster.CreateWithNodeImage(spec.Image),
		kindcluster.CreateWithRetain(spec.Retain),
		kindcluster.CreateWithWaitForReady(wait),
		kindcluster.CreateWithKubeconfigPath(spec.Kubeconfig),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	)
	stopWatch()
	<-watched
	rec.State = recComplete
	if err != nil {
		rec.State = recFailed
	}
	// Read the node again rather than trust the watch: it may have missed
	// a short create.
	if ids, lerr := nodeIDs(context.WithoutCancel(ctx), docker, spec.Name); lerr == nil && len(ids) > 0 {
		rec.Node = ids[0]
	}
	if werr := recs.write(*rec); werr != nil {
		// The next Ensure sees "creating" and recreates a cluster that
		// may be fine: wasteful, never wrong.
		lg.Warnf("%v", werr)
	}
	if err != nil {
		hint := "the node containers were removed; set Retain (--retain) to keep them for debugging"
		if spec.Retain {
			hint = fmt.Sprintf("the node containers were kept: inspect them with `docker logs %s-control-plane`, delete with `devenv down`", spec.Name)
		}
		return nil, "", fmt.Errorf("creating cluster %q: %w (%s)", spec.Name, err, hint)
	}
	c, err := connect(spec.Name, spec.Kubeconfig, lg, provider)
	if err != nil {
		return nil, "", err
	}
	if err := c.ready(ctx, 30*time.Second); err != nil {
		return nil, "", fmt.Errorf("cluster %q was created but its API server does not answer: %w", spec.Name, err)
	}
	if err := c.quickDNS(ctx, lg); err != nil {
		lg.Debugf("%v (DNS is only slower to become ready)", err) // best effort
	}
	lg.Infof("cluster %q %s in %s (context %s)", spec.Name, result, time.Since(start).Round(100*time.Millisecond), c.Context)
	return c, result, nil
}

// Delete removes the cluster's node containers and its kubeconfig entry. It
// leaves the kind Docker network alone (other containers use it). Deleting a
// cluster that does not exist is not an error. kubeconfig is the file to
// remove the context from ("" for the default one). It also forgets Ensure's
// creation record of the cluster (opts.Docker says which engine's).
func Delete(ctx context.Context, name, kubeconfig string, opts Options) error {
	lg := log.FromSlog(opts.Log)
	if err := ctx.Err(); err != nil {
		return err
	}
	lg.Infof("deleting cluster %q", name)
	docker, closeDocker, err := opts.docker(ctx)
	if err != nil {
		return fmt.Errorf("deleting cluster %q: %w", name, err)
	}
	defer closeDocker()
	if err := deleteNodes(ctx, newProvider(lg), docker, name, kubeconfig, lg); err != nil {
		return fmt.Errorf("deleting cluster %q: %w", name, err)
	}
	forget(ctx, name, opts, lg)
	return nil
}

// deleteNodes has kind delete the cluster, thawing frozen processes in its
// nodes first (see thawNodes) and once more before a second try.
func deleteNodes(ctx context.Context, provider *kindcluster.Provider, docker *client.Client, name, kubeconfig string, lg *log.Logger) error {
	thawNodes(ctx, docker, name, lg)
	err := provider.Delete(name, kubeconfig)
	if err == nil || ctx.Err() != nil {
		return err
	}
	if thawNodes(ctx, docker, name, lg) == 0 {
		return err
	}
	lg.Debugf("deleting cluster %q again after: %v", name, err)
	return provider.Delete(name, kubeconfig)
}

// forget removes the creation record of a deleted cluster. A record left
// behind is harmless (it names node containers that no longer exist), so
// failures are only logged.
func forget(ctx context.Context, name string, opts Options, lg *log.Logger) {
	recs, err := opts.records()
	if err != nil {
		lg.Debugf("not removing the creation record of cluster %q: %v", name, err)
		return
	}
	docker, closeDocker, err := opts.docker(ctx)
	if err != nil {
		lg.Debugf("not removing the creation record of cluster %q: %v", name, err)
		return
	}
	defer closeDocker()
	engine, err := engineID(ctx, docker)
	if err == nil {
		err = recs.remove(engine, name)
	}
	if err != nil {
		lg.Debugf("not removing the creation record of cluster %q: %v", name, err)
	}
}

// Connect returns a connection to an existing cluster without creating
// anything. It fails with ErrNoCluster when kind knows no such cluster or the
// kubeconfig has no kind-<name> context.
func Connect(ctx context.Context, name, kubeconfig string) (*Cluster, error) {
	lg := log.Nop()
	// kind's own listing runs the docker command; the Docker API answers
	// the same question (node containers labelled with the cluster's name)
	// in a few milliseconds.
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := docker.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: client.Filters{}.Add("label", kindClusterLabel+"="+name)})
	_ = docker.Close()
	if err != nil {
		return nil, fmt.Errorf("listing kind clusters: %w", err)
	}
	if len(nodes.Items) == 0 {
		return nil, fmt.Errorf("%w %q: create it with `devenv up`", ErrNoCluster, name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return connect(name, kubeconfig, lg, newProvider(lg))
}

// connect builds the clients from the kubeconfig context kind-<name>.
func connect(name, kubeconfig string, lg *log.Logger, provider *kindcluster.Provider) (*Cluster, error) {
	contextName := "kind-" + name
	raw, err := loadKubeconfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	if _, ok := raw.Contexts[contextName]; !ok {
		return nil, fmt.Errorf("%w %q: the kubeconfig has no context %s", ErrNoCluster, name, contextName)
	}
	c, err := connectContext(raw, contextName, lg)
	if err != nil {
		return nil, err
	}
	c.Name, c.Kubeconfig, c.Kind, c.provider = name, kubeconfig, true, provider
	return c, nil
}

// loadKubeconfig reads the kubeconfig file ("" for the default one,
// $KUBECONFIG else ~/.kube/config, as kubectl and kind pick it).
func loadKubeconfig(kubeconfig string) (*clientcmdapi.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	return raw, nil
}

// connectContext builds the clients from a context of raw.
func connectContext(raw *clientcmdapi.Config, contextName string, lg *log.Logger) (*Cluster, error) {
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{CurrentContext: contextName}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig context %s: %w", contextName, err)
	}
	cfg.WarningHandler = debugWarnings{log: lg}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
	return &Cluster{
		Context: contextName,
		REST:    cfg, Client: cs, Dynamic: dyn, Mapper: mapper,
		log: lg,
	}, nil
}

// reexport writes the kubeconfig entry from the node (a docker exec, hence the
// privileged workaround) and checks the API server answers.
func reexport(ctx context.Context, docker *client.Client, provider *kindcluster.Provider, spec Spec, lg *log.Logger) (*Cluster, error) {
	if _, err := ensurePrivileged(ctx, docker, spec.Image, lg); err != nil {
		return nil, err
	}
	if err := provider.ExportKubeConfig(spec.Name, spec.Kubeconfig, false); err != nil {
		return nil, fmt.Errorf("exporting kubeconfig of cluster %q: %w", spec.Name, err)
	}
	c, err := connect(spec.Name, spec.Kubeconfig, lg, provider)
	if err != nil {
		return nil, err
	}
	return c, c.ready(ctx, 20*time.Second)
}

// ready asks the API server's /readyz, for up to timeout.
func (c *Cluster) ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil {
			return nil
		}
		last = fmt.Errorf("%w %s", err, body)
		select {
		case <-ctx.Done():
			return fmt.Errorf("API server /readyz: %w", last)
		case <-time.After(time.Second):
		}
	}
}

type clusterState struct {
	ids            []string // the node containers' IDs
	nodes, stopped int
	staleImage     string // why a node's image is not Spec.Image as Docker has it now
	contextExists  bool
}

// inspectState counts the node containers and checks the kubeconfig context.
func inspectState(ctx context.Context, docker *client.Client, spec Spec) (clusterState, error) {
	var st clusterState
	res, err := docker.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", kindClusterLabel+"="+spec.Name),
	})
	if err != nil {
		return st, fmt.Errorf("listing node containers of cluster %q: %w", spec.Name, err)
	}
	wantID := ""
	if img, err := docker.ImageInspect(ctx, spec.Image); err == nil {
		wantID = img.ID
	}
	for _, c := range res.Items {
		st.nodes++
		st.ids = append(st.ids, c.ID)
		if c.State != "running" {
			st.stopped++
		}
		switch {
		case wantID == "":
			// the image is gone from Docker: keep the cluster rather than fail to recreate it
		case c.Image != spec.Image && c.ImageID != wantID:
			st.staleImage = fmt.Sprintf("runs node image %s, not %s", c.Image, spec.Image)
		case c.ImageID != wantID:
			st.staleImage = fmt.Sprintf("runs an older build of %s (%s; the image is now %s)", spec.Image, shortID(c.ImageID), shortID(wantID))
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if spec.Kubeconfig != "" {
		rules.ExplicitPath = spec.Kubeconfig
	}
	if raw, err := rules.Load(); err == nil {
		_, st.contextExists = raw.Contexts["kind-"+spec.Name]
	}
	return st, nil
}

// singleNodeConfig is the kind config devenv uses: one control-plane node
// (the offline node image ships a static bridge CNI that only works on one node).
//
// Its containerd reads per-registry host files from registry.CertsDir, so a
// registry container can be wired in later (registry: local) without a new
// cluster; with no host files there, pulls go where they always did.
func singleNodeConfig() *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{
		TypeMeta:                v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:                   []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}},
		ContainerdConfigPatches: registry.KindContainerdPatches(),
	}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}
