package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// DefaultFieldManager is the server-side apply field manager devenv uses.
const DefaultFieldManager = "devenv"

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	FieldManager string // "" means DefaultFieldManager
	// Selector is the set of ownership labels (e.g. devenv.dev/project=cosmos).
	// Apply adds them to every object; Prune only considers objects carrying
	// all of them.
	Selector map[string]string
	// Prune deletes objects of the kinds devenv manages (see ManagedKinds)
	// that carry the Selector labels and were applied by FieldManager, but are
	// not in the applied list. It needs a non-empty Selector.
	Prune bool
	// Namespace, when set, limits Prune to that namespace: on a cluster
	// devenv did not create, another namespace may hold the same project
	// (another developer's), which is not this one's to prune.
	Namespace string
	// NamespaceOwner, when set, makes Apply careful with Namespaces: one it
	// creates gets the annotation AnnotationCreatedBy=NamespaceOwner, and
	// one that exists without that annotation (default, or one someone
	// made before) is left exactly as it is. DeleteNamespace removes only a
	// namespace carrying the annotation.
	NamespaceOwner string
}

// AnnotationCreatedBy marks a Namespace devenv created on a cluster it did
// not create; its value is the owner (the project's identity key).
const AnnotationCreatedBy = "devenv.dev/created-by"

// ApplyResult lists objects as "Kind/namespace/name" (or "Kind/name").
type ApplyResult struct {
	Created, Changed, Unchanged, Pruned []string
	// Warnings are the API server's warnings for the applied objects
	// (deprecated APIs, unknown fields...).
	Warnings []string
	// Versions maps each applied object to its version after the apply
	// (see Unchanged): what a later Unchanged compares with.
	Versions map[string]string
}

// ManagedKinds are the kinds Prune and DeleteOwned act on, in deletion order.
// Namespaces are never deleted.
var ManagedKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Version: "v1", Resource: "services"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	{Version: "v1", Resource: "endpoints"},
	{Version: "v1", Resource: "configmaps"},
	{Version: "v1", Resource: "secrets"},
}

// Apply server-side applies objs (with Force, so devenv wins field conflicts)
// in the given order, except that Namespaces go first and are waited for
// until Active. An object whose resourceVersion did not move is reported
// unchanged, so applying the same list twice reports everything unchanged.
func (c *Cluster) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) (ApplyResult, error) {
	var res ApplyResult
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	if opts.Prune && len(opts.Selector) == 0 {
		return res, errors.New("applying: pruning needs ownership labels (ApplyOptions.Selector), or it would delete everything")
	}
	ordered := make([]*unstructured.Unstructured, 0, len(objs))
	for i, o := range objs {
		if o == nil || o.GetKind() == "" || o.GetAPIVersion() == "" || o.GetName() == "" {
			return res, fmt.Errorf("applying object %d: apiVersion, kind and metadata.name are required", i+1)
		}
		if o.GetKind() == "Namespace" {
			ordered = append(ordered, o)
		}
	}
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			ordered = append(ordered, o)
		}
	}

	warnings := &warningCollector{log: c.log}
	cfg := rest.CopyConfig(c.REST)
	cfg.WarningHandler = warnings
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return res, fmt.Errorf("creating Kubernetes client: %w", err)
	}

	// Namespaces first, one by one (the rest lives in them); then the
	// other objects at once: a warm up applies a dozen unchanged objects,
	// and one round trip for all of them beats one per object.
	n := 0
	for n < len(ordered) && ordered[n].GetKind() == "Namespace" {
		n++
	}
	type outcome struct {
		key, id, state, version string
		err                     error
	}
	outcomes := make([]outcome, len(ordered))
	for i, o := range ordered[:n] {
		outcomes[i].key, outcomes[i].id, outcomes[i].state, outcomes[i].version, outcomes[i].err = c.applyOne(ctx, dyn, o, opts)
		if outcomes[i].err != nil {
			return res, outcomes[i].err
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, applyParallel)
	for i, o := range ordered[n:] {
		i += n
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			outcomes[i].key, outcomes[i].id, outcomes[i].state, outcomes[i].version, outcomes[i].err = c.applyOne(ctx, dyn, o, opts)
		})
	}
	wg.Wait()
	applied := map[string]bool{}
	res.Versions = make(map[string]string, len(outcomes))
	for _, oc := range outcomes {
		if oc.err != nil {
			return res, oc.err
		}
		applied[oc.key] = true
		res.Versions[oc.id] = oc.version
		switch oc.state {
		case "created":
			res.Created = append(res.Created, oc.id)
		case "unchanged":
			res.Unchanged = append(res.Unchanged, oc.id)
		default:
			res.Changed = append(res.Changed, oc.id)
		}
	}
	res.Warnings = warnings.warnings()

	if opts.Prune {
		pruned, err := c.deleteOwned(ctx, opts.Namespace, opts.Selector, opts.FieldManager, applied)
		res.Pruned = pruned
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// applyParallel bounds the requests Apply has in flight.
const applyParallel = 8

// applyOne server-side applies one object (with the selector's labels) and
// says whether it was created, changed or left unchanged; key identifies
// it for pruning.
func (c *Cluster) applyOne(ctx context.Context, dyn dynamic.Interface, o *unstructured.Unstructured, opts ApplyOptions) (key, id, state, version string, err error) {
	o = o.DeepCopy()
	if len(opts.Selector) > 0 {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		maps.Copy(l, opts.Selector)
		o.SetLabels(l)
	}
	ri, gvr, err := c.resourceFor(dyn, o)
	if err != nil {
		return "", "", "", "", err
	}
	id = objectID(o)
	key = gvr.String() + "|" + o.GetNamespace() + "|" + o.GetName()
	before := ""
	cur, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	switch {
	case err == nil:
		before = cur.GetResourceVersion()
		if o.GetKind() == "Namespace" && cur.GetDeletionTimestamp() != nil {
			if err := c.waitNamespaceGone(ctx, ri, o.GetName()); err != nil {
				return "", "", "", "", err
			}
			before = ""
		}
	case apierrors.IsNotFound(err):
		cur = nil
	default:
		return "", "", "", "", fmt.Errorf("reading %s: %w", id, err)
	}
	if o.GetKind() == "Namespace" && opts.NamespaceOwner != "" {
		if cur != nil && before != "" && cur.GetAnnotations()[AnnotationCreatedBy] != opts.NamespaceOwner {
			// Not devenv's: use it, change nothing on it.
			c.log.Debugf("namespace %s existed before: left as it is", o.GetName())
			return key, id, "unchanged", objectVersion("", cur), nil
		}
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[AnnotationCreatedBy] = opts.NamespaceOwner
		o.SetAnnotations(a)
	}
	out, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: opts.FieldManager, Force: true})
	if err != nil {
		return "", "", "", "", fmt.Errorf("applying %s: %w", id, err)
	}
	switch {
	case before == "":
		state = "created"
	case before == out.GetResourceVersion() || sameContent(o, cur, out, opts.FieldManager):
		state = "unchanged"
	default:
		state = "changed"
	}
	c.log.Debugf("applied %s", id)
	if o.GetKind() == "Namespace" {
		if err := c.waitNamespaceActive(ctx, ri, o.GetName()); err != nil {
			return "", "", "", "", err
		}
	}
	return key, id, state, objectVersion(out.GroupVersionKind().Group, out), nil
}

// objectVersion is what Unchanged compares: the generation of a workload (its
// controller writes its status, which bumps the resourceVersion without any
// change to what devenv applied), the resourceVersion of anything else.
func objectVersion(group string, o metav1.Object) string {
	if o.GetGeneration() > 0 && (group == "apps" || group == "batch") {
		return "g" + strconv.FormatInt(o.GetGeneration(), 10)
	}
	return "rv" + o.GetResourceVersion()
}

// Unchanged says whether every object in objs is still in the cluster at the
// version a past Apply returned for it (ApplyResult.Versions): then applying
// objs again would change nothing, as long as they render the same as then
// (the caller's to check, e.g. with a hash). It reads only metadata, one list
// per kind and namespace, so a warm `up` can skip the apply. Edits that bump
// neither the generation nor the resourceVersion are not possible; edits of
// a workload's labels or annotations (no new generation) go unseen until the
// next apply.
func (c *Cluster) Unchanged(ctx context.Context, objs []*unstructured.Unstructured, selector map[string]string, versions map[string]string) (bool, error) {
	if len(objs) == 0 || len(versions) == 0 {
		return false, nil
	}
	cfg := rest.CopyConfig(c.REST)
	cfg.WarningHandler = rest.NoWarnings{} // listing v1 Endpoints always warns about its deprecation
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return false, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	type list struct {
		gvr       schema.GroupVersionResource
		namespace string
		names     map[string]string // name -> object id
	}
	lists := map[string]*list{}
	var order []string
	for _, o := range objs {
		id := objectID(o)
		if _, ok := versions[id]; !ok {
			return false, nil
		}
		gvk := o.GroupVersionKind()
		m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return false, nil // Apply says what is wrong
		}
		ns := ""
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns = o.GetNamespace()
		}
		k := m.Resource.String() + "|" + ns
		if lists[k] == nil {
			lists[k] = &list{gvr: m.Resource, namespace: ns, names: map[string]string{}}
			order = append(order, k)
		}
		lists[k].names[o.GetName()] = id
	}
	sel := labels.SelectorFromSet(selector).String()
	same := make([]bool, len(order))
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, k := range order {
		l := lists[k]
		wg.Go(func() {
			var items []metav1.PartialObjectMetadata
			if l.namespace == "" && len(l.names) == 1 {
				// A Namespace: read the one object rather than list them all.
				for name := range l.names {
					o, err := md.Resource(l.gvr).Get(ctx, name, metav1.GetOptions{})
					if apierrors.IsNotFound(err) {
						return
					}
					if err != nil {
						errs[i] = err
						return
					}
					items = append(items, *o)
				}
			} else {
				got, err := md.Resource(l.gvr).Namespace(l.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
				if err != nil {
					errs[i] = err
					return
				}
				items = got.Items
			}
			seen := 0
			for j := range items {
				it := &items[j]
				id, ok := l.names[it.GetName()]
				if !ok {
					continue
				}
				if it.GetDeletionTimestamp() != nil || objectVersion(l.gvr.Group, it) != versions[id] {
					return
				}
				seen++
			}
			same[i] = seen == len(l.names)
		})
	}
	wg.Wait()
	for i := range order {
		if errs[i] != nil {
			return false, fmt.Errorf("reading the applied objects: %w", errs[i])
		}
		if !same[i] {
			return false, nil
		}
	}
	return true, nil
}

// sameContent says whether applying o left the object as it was: every
// field o sets has the same value in both versions, and the manager owns
// the same fields. The resourceVersion alone cannot tell: a controller may
// write a Deployment's status or revision annotation between Apply's read
// and its apply.
func sameContent(o, cur, out *unstructured.Unstructured, manager string) bool {
	if cur == nil || out == nil {
		return false
	}
	if !sameOn(o.Object, cur.Object, out.Object) {
		return false
	}
	return equality.Semantic.DeepEqual(ownedFields(cur, manager), ownedFields(out, manager))
}

// sameOn compares a and b on the keys of the map shape; below a value that
// is not a map, it compares whole values.
func sameOn(shape, a, b map[string]any) bool {
	for k, v := range shape {
		if sub, ok := v.(map[string]any); ok {
			am, aok := a[k].(map[string]any)
			bm, bok := b[k].(map[string]any)
			if aok != bok || !sameOn(sub, am, bm) {
				return false
			}
			continue
		}
		if !equality.Semantic.DeepEqual(a[k], b[k]) {
			return false
		}
	}
	return true
}

// ownedFields is the field set the manager's apply entry claims.
func ownedFields(o *unstructured.Unstructured, manager string) string {
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" && mf.FieldsV1 != nil {
			return string(mf.FieldsV1.Raw)
		}
	}
	return ""
}

// DeleteOwned deletes every object of ManagedKinds in namespace ("" for
// every namespace) that carries all the selector labels and was applied by
// devenv (for `down --keep-cluster`, and `down` on a cluster devenv did not
// create). Namespaces are left in place (see DeleteNamespace). It returns
// what it deleted.
func (c *Cluster) DeleteOwned(ctx context.Context, namespace string, selector map[string]string) ([]string, error) {
	if len(selector) == 0 {
		return nil, errors.New("deleting owned objects: no ownership labels given")
	}
	return c.deleteOwned(ctx, namespace, selector, DefaultFieldManager, nil)
}

// protectedNamespaces are never deleted, whatever they carry.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// DeleteNamespace deletes namespace name if Apply created it for owner
// (ApplyOptions.NamespaceOwner): a namespace that existed before, or that
// another owner created, and the cluster's own namespaces are left in
// place. It reports whether it deleted it; it does not wait for the
// namespace to be gone.
func (c *Cluster) DeleteNamespace(ctx context.Context, name, owner string) (bool, error) {
	if owner == "" || protectedNamespaces[name] {
		return false, nil
	}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	if ns.Annotations[AnnotationCreatedBy] != owner || ns.DeletionTimestamp != nil {
		return false, nil
	}
	// The precondition makes sure it is the namespace just read.
	uid := ns.UID
	err = c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	return err == nil, nil
}

// deleteOwned deletes labelled objects applied by manager that are not in
// keep, in namespace ("" for all). Objects only copied the labels
// (EndpointSlices and Endpoints a controller made for a Service) have no
// apply entry by manager and are left alone.
func (c *Cluster) deleteOwned(ctx context.Context, namespace string, selector map[string]string, manager string, keep map[string]bool) ([]string, error) {
	cfg := rest.CopyConfig(c.REST)
	cfg.WarningHandler = rest.NoWarnings{} // listing v1 Endpoints always warns about its deprecation
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating Kubernetes client: %w", err)
	}
	sel := labels.SelectorFromSet(selector).String()
	// Every kind is listed at once; deletions follow in ManagedKinds' order.
	lists := make([]*unstructured.UnstructuredList, len(ManagedKinds))
	errs := make([]error, len(ManagedKinds))
	var wg sync.WaitGroup
	for i, gvr := range ManagedKinds {
		wg.Go(func() {
			lists[i], errs[i] = dyn.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		})
	}
	wg.Wait()
	var deleted []string
	for k, gvr := range ManagedKinds {
		list, err := lists[k], errs[k]
		if err != nil {
			return deleted, fmt.Errorf("listing %s labelled %s: %w", gvr.Resource, sel, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if keep[gvr.String()+"|"+o.GetNamespace()+"|"+o.GetName()] || !appliedBy(o, manager) || o.GetDeletionTimestamp() != nil {
				continue
			}
			id := objectID(o)
			prop := metav1.DeletePropagationBackground
			err := dyn.Resource(gvr).Namespace(o.GetNamespace()).Delete(ctx, o.GetName(), metav1.DeleteOptions{PropagationPolicy: &prop})
			if err != nil && !apierrors.IsNotFound(err) {
				return deleted, fmt.Errorf("deleting %s: %w", id, err)
			}
			c.log.Debugf("deleted %s", id)
			deleted = append(deleted, id)
		}
	}
	return deleted, nil
}

// appliedBy reports whether manager server-side applied some of o's fields.
func appliedBy(o *unstructured.Unstructured, manager string) bool {
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

// resourceFor maps o's kind to a resource client, refreshing discovery once
// for kinds it has not seen.
func (c *Cluster) resourceFor(dyn dynamic.Interface, o *unstructured.Unstructured) (dynamic.ResourceInterface, schema.GroupVersionResource, error) {
	gvk := o.GroupVersionKind()
	m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		if r, ok := c.Mapper.(meta.ResettableRESTMapper); ok {
			r.Reset()
			m, err = c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
	}
	if err != nil {
		return nil, schema.GroupVersionResource{}, fmt.Errorf("applying %s: the cluster does not know kind %s in %s: %w", objectID(o), gvk.Kind, gvk.GroupVersion(), err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return dyn.Resource(m.Resource), m.Resource, nil
	}
	if o.GetNamespace() == "" {
		return nil, m.Resource, fmt.Errorf("applying %s: metadata.namespace is required for a namespaced kind", objectID(o))
	}
	return dyn.Resource(m.Resource).Namespace(o.GetNamespace()), m.Resource, nil
}

func (c *Cluster) waitNamespaceActive(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	return poll(ctx, time.Minute, 250*time.Millisecond, func() (bool, error) {
		ns, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase, _, _ := unstructured.NestedString(ns.Object, "status", "phase")
		return phase == "Active", fmt.Errorf("namespace %s is %q", name, phase)
	})
}

func (c *Cluster) waitNamespaceGone(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	const wait = 2 * time.Minute
	c.log.Infof("namespace %s is being deleted; waiting up to %s for it to go before creating it again", name, wait)
	return poll(ctx, wait, 500*time.Millisecond, func() (bool, error) {
		_, err := ri.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("namespace %s is still terminating", name)
	})
}

// poll calls check until it returns true, ctx ends, or timeout passes; on
// timeout it returns check's last error.
func poll(ctx context.Context, timeout, every time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// objectID is "Kind/namespace/name", or "Kind/name" for cluster-scoped objects.
func objectID(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}
