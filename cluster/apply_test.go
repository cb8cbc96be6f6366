package cluster

import (
	"bytes"
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devenv-tool/devenv/internal/log"
)

func u(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

func TestApplyRejectsBadInput(t *testing.T) {
	c := &Cluster{log: log.Nop()}
	ctx := context.Background()
	_, err := c.Apply(ctx, []*unstructured.Unstructured{u("v1", "ConfigMap", "ns", "a")}, ApplyOptions{Prune: true})
	if err == nil || !strings.Contains(err.Error(), "Selector") {
		t.Errorf("prune without selector: %v", err)
	}
	_, err = c.Apply(ctx, []*unstructured.Unstructured{u("v1", "ConfigMap", "ns", "a"), u("v1", "ConfigMap", "ns", "")}, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "object 2") || !strings.Contains(err.Error(), "metadata.name") {
		t.Errorf("missing name: %v", err)
	}
	if _, err := c.DeleteOwned(ctx, "", nil); err == nil {
		t.Error("DeleteOwned without labels must refuse")
	}
}

func TestObjectID(t *testing.T) {
	if got := objectID(u("v1", "Namespace", "", "cosmos")); got != "Namespace/cosmos" {
		t.Error(got)
	}
	if got := objectID(u("v1", "Service", "cosmos", "kafka")); got != "Service/cosmos/kafka" {
		t.Error(got)
	}
}

func TestAppliedBy(t *testing.T) {
	o := u("v1", "EndpointSlice", "ns", "kafka-abc")
	o.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}})
	if appliedBy(o, "devenv") {
		t.Error("a controller's copy is not devenv's")
	}
	o.SetManagedFields(append(o.GetManagedFields(), metav1.ManagedFieldsEntry{Manager: "devenv", Operation: metav1.ManagedFieldsOperationUpdate}))
	if appliedBy(o, "devenv") {
		t.Error("an update is not an apply")
	}
	o.SetManagedFields(append(o.GetManagedFields(), metav1.ManagedFieldsEntry{Manager: "devenv", Operation: metav1.ManagedFieldsOperationApply}))
	if !appliedBy(o, "devenv") {
		t.Error("devenv applied it")
	}
}

func TestKindLogger(t *testing.T) {
	var quiet, loud bytes.Buffer
	for _, tc := range []struct {
		buf     *bytes.Buffer
		verbose bool
	}{{&quiet, false}, {&loud, true}} {
		k := kindLogger{log.New(tc.buf, tc.verbose)}
		k.V(0).Infof("Creating cluster %q ...\n", "x")
		k.V(1).Info("detail")
		k.Warn("careful")
	}
	if got := quiet.String(); got != "Creating cluster \"x\" ...\nwarning: careful\n" {
		t.Errorf("quiet: %q", got)
	}
	if !strings.Contains(loud.String(), "debug: kind: detail") {
		t.Errorf("verbose: %q", loud.String())
	}
	if (kindLogger{log.Nop()}).V(1).Enabled() {
		t.Error("debug level should be off without -v")
	}
}

func TestWarningCollector(t *testing.T) {
	w := &warningCollector{log: log.Nop()}
	w.HandleWarningHeader(299, "", "v1 Endpoints is deprecated in v1.33+")
	w.HandleWarningHeader(199, "", "ignored")
	if got := w.warnings(); len(got) != 1 || !strings.Contains(got[0], "Endpoints") {
		t.Errorf("got %q", got)
	}
}

func TestSingleNodeConfig(t *testing.T) {
	cfg := singleNodeConfig()
	if len(cfg.Nodes) != 1 || cfg.Nodes[0].Role != "control-plane" {
		t.Errorf("nodes %+v", cfg.Nodes)
	}
}

func TestSameContent(t *testing.T) {
	obj := func(s string) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(s)); err != nil {
			t.Fatal(err)
		}
		return u
	}
	applied := obj(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","labels":{"app":"a"}},"spec":{"replicas":1}}`)
	mf := `"managedFields":[{"manager":"devenv","operation":"Apply","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}]`
	cur := obj(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","resourceVersion":"1","labels":{"app":"a"},` + mf + `},"spec":{"replicas":1,"paused":false}}`)
	// A controller wrote status and its revision annotation in between.
	later := obj(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","resourceVersion":"3","labels":{"app":"a"},"annotations":{"deployment.kubernetes.io/revision":"1"},` + mf + `},"spec":{"replicas":1,"paused":false},"status":{"replicas":1}}`)
	if !sameContent(applied, cur, later, "devenv") {
		t.Error("a status and annotation written by a controller counted as a change")
	}
	scaled := obj(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","resourceVersion":"3","labels":{"app":"a"},` + mf + `},"spec":{"replicas":2,"paused":false}}`)
	if sameContent(applied, scaled, later, "devenv") {
		t.Error("a changed replica count counted as no change")
	}
	relabelled := obj(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","resourceVersion":"3",` + mf + `},"spec":{"replicas":1,"paused":false}}`)
	if sameContent(applied, relabelled, later, "devenv") {
		t.Error("an added label counted as no change")
	}
	dropped := obj(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","resourceVersion":"3","labels":{"app":"a"},"managedFields":[{"manager":"devenv","operation":"Apply","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{},"f:paused":{}}}}]},"spec":{"replicas":1,"paused":false}}`)
	if sameContent(applied, dropped, later, "devenv") {
		t.Error("a field devenv stopped setting counted as no change")
	}
	if sameContent(applied, nil, later, "devenv") {
		t.Error("a created object counted as unchanged")
	}
}
