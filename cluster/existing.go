package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	authv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/internal/log"
)

// ConnectExisting connects to a cluster devenv did not create, through
// context of the kubeconfig file ("" for the default one). Before it returns
// it checks that the context exists (the error lists the ones that do) and
// that the API server answers (ServerVersion). When the cluster's nodes are
// kind containers on the Docker engine of opts (a kind cluster someone else
// created), Kind is set and Name is the kind cluster's name, so images can be
// loaded into it directly; otherwise Name is "". Existing is always set:
// devenv never deletes such a cluster.
//
// It creates nothing. Check what the user may do with CheckAccess.
func ConnectExisting(ctx context.Context, contextName, kubeconfig string, opts Options) (*Cluster, error) {
	lg := log.FromSlog(opts.Log)
	if contextName == "" {
		return nil, errors.New("connecting to a cluster: no kubeconfig context given")
	}
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); err != nil {
			return nil, fmt.Errorf("%w: the kubeconfig %s: %v: check cluster.kubeconfig in devenv.yaml, or --kubeconfig", ErrNoCluster, kubeconfig, err)
		}
	}
	raw, err := loadKubeconfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	file := kubeconfig
	if file == "" {
		file = "the default kubeconfig ($KUBECONFIG, else ~/.kube/config)"
	}
	if _, ok := raw.Contexts[contextName]; !ok {
		var have []string
		for name := range raw.Contexts {
			have = append(have, name)
		}
		slices.Sort(have)
		list := "none"
		if len(have) > 0 {
			list = strings.Join(have, ", ")
		}
		return nil, fmt.Errorf("%w: %s has no context %q (it has: %s): check cluster.context in devenv.yaml, or pick the file with cluster.kubeconfig or --kubeconfig",
			ErrNoCluster, file, contextName, list)
	}
	c, err := connectContext(raw, contextName, lg)
	if err != nil {
		return nil, err
	}
	c.Kubeconfig, c.Existing = kubeconfig, true

	vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := serverVersion(vctx, c)
	if err != nil {
		return nil, fmt.Errorf("the API server of context %s (%s) does not answer: %w: is the cluster running, and are the kubeconfig's credentials current?", contextName, c.REST.Host, err)
	}
	c.ServerVersion = v
	if name := kindNameOf(ctx, c, opts); name != "" {
		c.Name, c.Kind, c.provider = name, true, newProvider(lg)
	}
	lg.Debugf("context %s: Kubernetes %s at %s (kind cluster on this Docker engine: %v)", contextName, v, c.REST.Host, c.Kind)
	return c, nil
}

// serverVersion asks the API server's /version, honouring ctx.
func serverVersion(ctx context.Context, c *Cluster) (string, error) {
	body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("reading /version: %w", err)
	}
	return v.GitVersion, nil
}

// kindNameOf returns the name of the kind cluster whose control-plane
// container on this Docker engine serves c's API (the port the kubeconfig
// points at is the one the container publishes for 6443), or "".
func kindNameOf(ctx context.Context, c *Cluster, opts Options) string {
	u, err := url.Parse(c.REST.Host)
	if err != nil {
		return ""
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return ""
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	docker, done, err := opts.docker(dctx)
	if err != nil {
		return "" // no Docker here: not a kind cluster devenv can reach
	}
	defer done()
	list, err := docker.ContainerList(dctx, client.ContainerListOptions{
		Filters: client.Filters{}.Add("label", kindClusterLabel).Add("label", "io.x-k8s.kind.role=control-plane")})
	if err != nil {
		return ""
	}
	for _, ctr := range list.Items {
		for _, p := range ctr.Ports {
			if p.PrivatePort == 6443 && fmt.Sprint(p.PublicPort) == port {
				return ctr.Labels[kindClusterLabel]
			}
		}
	}
	return ""
}

// Access is one thing a user may or may not do, as a
// SelfSubjectAccessReview asks it.
type Access struct {
	Verb        string // create, get, list, watch, patch, delete
	Group       string // "" for the core group
	Resource    string // plural: deployments, services, ...
	Subresource string // exec, portforward, log, or ""
}

func (a Access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	return a.Verb + " " + r
}

// ProjectAccess is what devenv does in a project's namespace on every
// cluster: apply and prune its objects, watch rollouts, read pod logs and
// events, exec into pods for live updates and forward ports.
var ProjectAccess = []Access{
	{Verb: "get", Group: "apps", Resource: "deployments"},
	{Verb: "list", Group: "apps", Resource: "deployments"},
	{Verb: "patch", Group: "apps", Resource: "deployments"},
	{Verb: "create", Group: "apps", Resource: "deployments"},
	{Verb: "delete", Group: "apps", Resource: "deployments"},
	{Verb: "list", Group: "apps", Resource: "replicasets"},
	{Verb: "patch", Resource: "services"},
	{Verb: "create", Resource: "services"},
	{Verb: "delete", Resource: "services"},
	{Verb: "patch", Group: "discovery.k8s.io", Resource: "endpointslices"},
	{Verb: "create", Group: "discovery.k8s.io", Resource: "endpointslices"},
	{Verb: "delete", Group: "discovery.k8s.io", Resource: "endpointslices"},
	{Verb: "patch", Resource: "configmaps"},
	{Verb: "create", Resource: "configmaps"},
	{Verb: "delete", Resource: "configmaps"},
	{Verb: "patch", Resource: "secrets"},
	{Verb: "create", Resource: "secrets"},
	{Verb: "delete", Resource: "secrets"},
	{Verb: "list", Resource: "pods"},
	{Verb: "watch", Resource: "pods"},
	{Verb: "get", Resource: "pods", Subresource: "log"},
	{Verb: "create", Resource: "pods", Subresource: "exec"},
	{Verb: "create", Resource: "pods", Subresource: "portforward"},
	{Verb: "list", Resource: "events"},
}

// CheckAccess asks the API server (SelfSubjectAccessReview) whether the
// user of c's context may do each of needs in namespace, and, when the
// namespace does not exist yet, whether they may create it. It returns nil
// when everything is allowed, or one error naming everything that is not.
func (c *Cluster) CheckAccess(ctx context.Context, namespace string, needs []Access) error {
	needs = slices.Clone(needs)
	_, err := c.Client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		needs = append(needs, Access{Verb: "create", Resource: "namespaces"})
	case apierrors.IsForbidden(err):
		// Reading namespaces is not needed when the namespace exists;
		// creating it is asked below only if the read says it is missing.
	case err != nil:
		return fmt.Errorf("reading namespace %s on context %s: %w", namespace, c.Context, err)
	}
	denied := make([]string, len(needs))
	errs := make([]error, len(needs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, a := range needs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ns := namespace
			if a.Resource == "namespaces" {
				ns = ""
			}
			r, err := c.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
				Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
					Namespace: ns, Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource}},
			}, metav1.CreateOptions{})
			switch {
			case err != nil:
				errs[i] = err
			case !r.Status.Allowed:
				denied[i] = a.String()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("asking the API server of context %s what the user may do: %w", c.Context, err)
	}
	denied = slices.DeleteFunc(denied, func(s string) bool { return s == "" })
	if len(denied) == 0 {
		return nil
	}
	where := "in namespace " + namespace
	return fmt.Errorf("on context %s the user may not %s %s: ask the cluster's admin for a Role granting these, or use a namespace you may write (namespace: in devenv.yaml)",
		c.Context, strings.Join(denied, ", "), where)
}
