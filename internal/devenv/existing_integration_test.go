package devenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
)

// TestIntegrationExistingCluster runs the cosmos example on a kind cluster
// the test created itself with kind's Go API (devenv did not create it), in
// two namespaces under the same project name: each is served, down of one
// leaves the other serving, and down leaves the cluster, a namespace that
// existed before and its objects untouched.
func TestIntegrationExistingCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	if err := kafka.ConfigureTestcontainers(); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	kc := filepath.Join(tmp, "kubeconfig")
	kind := testenv.NewKindCluster(t, ctx, testenv.Name("ext-"), testenv.NodeImage, kc)

	// A namespace and an object that were there before devenv.
	k, err := cluster.ConnectExisting(ctx, kind.Context, kc, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Kind || k.Name != kind.Name || !k.Existing {
		t.Errorf("ConnectExisting: Kind=%v Name=%q Existing=%v, want a kind cluster named %s", k.Kind, k.Name, k.Existing, kind.Name)
	}
	name := testenv.Name("it-")
	shared := "team-" + name
	if _, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shared}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().ConfigMaps(shared).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Data: map[string]string{"a": "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	load := func(ns string) *config.Config {
		t.Helper()
		override := filepath.Join(tmp, ns+".yaml")
		if err := os.WriteFile(override, []byte(fmt.Sprintf("name: %s\nnamespace: %s\n", name, ns)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(filepath.Join(root, "devenv.yaml"), override)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cluster.Context, cfg.Cluster.Kubeconfig = kind.Context, kc
		return cfg
	}
	out := &testenv.Log{TB: t}
	opts := Options{Log: log.New(out, true), RolloutTimeout: 4 * time.Minute, Live: true, PrivilegedShim: true}
	t.Cleanup(func() { testenv.RemoveImages(t, docker, build.LabelProject+"="+name) })

	// One project in the namespace that existed (devenv must not delete it),
	// the same project in a namespace devenv creates.
	a, b := load(shared), load("own-"+name)
	envA, err := Up(ctx, a, opts)
	if err != nil {
		t.Fatalf("up in %s: %v", shared, err)
	}
	envA.Close()
	envB, err := Up(ctx, b, opts)
	if err != nil {
		t.Fatalf("up in %s: %v", b.Namespace, err)
	}
	envB.Close()
	if envA.Kafka == nil || envB.Kafka == nil || envA.Kafka.ContainerID == envB.Kafka.ContainerID {
		t.Fatalf("the two namespaces share a Kafka container (or have none): %+v %+v", envA.Kafka, envB.Kafka)
	}
	serving := func(cfg *config.Config) error {
		b, err := testenv.Proxy(ctx, k, cfg.Namespace, "GET", "transfermoney:8080", "/version", nil)
		if err != nil {
			return fmt.Errorf("transfermoney in %s: %v: %s", cfg.Namespace, err, b)
		}
		return nil
	}
	for _, cfg := range []*config.Config{a, b} {
		if err := testenv.Eventually(ctx, time.Minute, time.Second, func() error { return serving(cfg) }); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := k.Client.CoreV1().Namespaces().Get(ctx, b.Namespace, metav1.GetOptions{})
	if err != nil || ns.Annotations[cluster.AnnotationCreatedBy] != projectKey(b) {
		t.Errorf("namespace %s devenv created: annotations %v, %v", b.Namespace, ns.GetAnnotations(), err)
	}
	ns, err = k.Client.CoreV1().Namespaces().Get(ctx, shared, metav1.GetOptions{})
	if err != nil || ns.Annotations[cluster.AnnotationCreatedBy] != "" || len(ns.ManagedFields) != 1 {
		t.Errorf("namespace %s that existed was changed: annotations %v, %d field managers, %v", shared, ns.GetAnnotations(), len(ns.ManagedFields), err)
	}

	// Down of B: A keeps serving; B's namespace is gone, B's containers too.
	if err := Down(ctx, b, DownOptions{Options: opts}); err != nil {
		t.Fatalf("down of %s: %v", b.Namespace, err)
	}
	if err := serving(a); err != nil {
		t.Errorf("after down of the other namespace: %v", err)
	}
	if err := testenv.Eventually(ctx, 2*time.Minute, time.Second, func() error {
		_, err := k.Client.CoreV1().Namespaces().Get(ctx, b.Namespace, metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("namespace %s is still there", b.Namespace)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if _, found, err := kafka.Find(ctx, docker, projectKey(b)); err != nil || found {
		t.Errorf("B's Kafka container after its down: found=%v %v", found, err)
	}
	if _, found, err := kafka.Find(ctx, docker, projectKey(a)); err != nil || !found {
		t.Errorf("A's Kafka container after B's down: found=%v %v", found, err)
	}

	// Down of A: the namespace that existed stays, with the object that was
	// there; A's objects go; the cluster stays.
	if err := Down(ctx, a, DownOptions{Options: opts}); err != nil {
		t.Fatalf("down of %s: %v", shared, err)
	}
	if _, err := k.Client.CoreV1().ConfigMaps(shared).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("the object that was in %s before devenv: %v", shared, err)
	}
	if ns, err := k.Client.CoreV1().Namespaces().Get(ctx, shared, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s that existed: %v (deleting: %v)", shared, err, ns.GetDeletionTimestamp())
	}
	left, err := k.Client.AppsV1().Deployments(shared).List(ctx, metav1.ListOptions{})
	if err != nil || len(left.Items) != 0 {
		t.Errorf("deployments left in %s after down: %d, %v", shared, len(left.Items), err)
	}
	for _, system := range []string{"kube-system", "default"} {
		if _, err := k.Client.CoreV1().Namespaces().Get(ctx, system, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s: %v", system, err)
		}
	}
	if err := k.Ping(ctx); err != nil {
		t.Errorf("the cluster after down: %v", err)
	}
	if slices.ContainsFunc(strings.Split(out.String(), "\n"), func(l string) bool { return strings.Contains(l, "deleting cluster") }) {
		t.Error("down tried to delete the cluster devenv did not create")
	}
}
