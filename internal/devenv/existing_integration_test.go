package devenv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
	"github.com/devenv-tool/devenv/registry"
)

// TestIntegrationExistingCluster runs the cosmos example on a kind cluster
// the test created itself with kind's Go API (devenv did not create it),
// whose containerd pulls from a registry container the test started:
//   - images go through the registry (the node has no side-loaded devenv
//     image), a second up uploads nothing, a one-line change one layer;
//   - a save is live-updated through the Kubernetes API;
//   - the same project in two namespaces: down of one leaves the other
//     serving, and down leaves the cluster, a namespace that existed before
//     and its objects untouched;
//   - kafka.external at a fixed IP on a Docker network the test created,
//     and by DNS name (an ExternalName Service): pods produce and consume.
func TestIntegrationExistingCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	testenv.RequireImage(t, docker, testenv.RegistryImage, "registry stand-in")
	if err := kafka.ConfigureTestcontainers(); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	kc := filepath.Join(tmp, "kubeconfig")
	name := testenv.Name("it-")

	// The registry container on the kind network, published on loopback.
	reg := testenv.StartRegistry(t, ctx, docker, "reg-"+name)
	regHost := reg.Host
	kcfg, err := registry.KindContainerd(regHost, reg.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	kind := testenv.NewKindCluster(t, ctx, testenv.Name("ext-"), testenv.NodeImage, kc, kcfg.ContainerdConfigPatches)
	kind.WriteNodeFiles(t, kcfg.Files)
	uploads := func() int { return reg.Uploads(t) }

	// A namespace and an object that were there before devenv.
	k, err := cluster.ConnectExisting(ctx, kind.Context, kc, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Kind || k.Name != kind.Name || !k.Existing {
		t.Errorf("ConnectExisting: Kind=%v Name=%q Existing=%v, want a kind cluster named %s", k.Kind, k.Name, k.Existing, kind.Name)
	}
	shared := "team-" + name
	if _, err := k.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shared}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().ConfigMaps(shared).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Data: map[string]string{"a": "b"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tm := filepath.Join(tmp, "transfermoney")
	testenv.CopyDir(t, filepath.Join(root, "examples/cosmos/transfermoney"), tm)
	load := func(ns, extra string) (*config.Config, []string) {
		t.Helper()
		override := filepath.Join(tmp, ns+".yaml")
		y := fmt.Sprintf("name: %s\nnamespace: %s\ncluster: {context: %s, kubeconfig: %s}\nregistry: %s\nservices:\n  transfermoney:\n    context: %s\n%s",
			name, ns, kind.Context, kc, regHost, tm, extra)
		if err := os.WriteFile(override, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		files := []string{filepath.Join(root, "devenv.yaml"), override}
		cfg, err := config.Load(files...)
		if err != nil {
			t.Fatalf("loading %s: %v", y, err)
		}
		return cfg, files
	}
	out := &testenv.Log{TB: t}
	opts := Options{Log: log.New(out, true), RolloutTimeout: 4 * time.Minute, Live: true, PrivilegedShim: true}
	t.Cleanup(func() {
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})
	images := func(ns, app string) []string {
		pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			t.Fatal(err)
		}
		var refs []string
		for _, p := range pods.Items {
			for _, c := range p.Spec.Containers {
				refs = append(refs, c.Image)
			}
		}
		return refs
	}
	get := func(ns, path string) (string, error) {
		b, err := testenv.Proxy(ctx, k, ns, "GET", "transfermoney:8080", path, nil)
		if err != nil {
			return "", fmt.Errorf("transfermoney in %s: %v: %s", ns, err, b)
		}
		return strings.TrimSpace(string(b)), nil
	}

	// One project in the namespace that existed (devenv must not delete it).
	a, filesA := load(shared, "")
	if a.Registry == nil || a.Cluster.Context != kind.Context {
		t.Fatalf("the override did not take: registry %v, context %q", a.Registry, a.Cluster.Context)
	}
	before := uploads()
	envA, err := Up(ctx, a, opts)
	if err != nil {
		t.Fatalf("up in %s: %v", shared, err)
	}
	first := uploads() - before
	if first == 0 {
		t.Error("the first up uploaded nothing to the registry")
	}
	for _, app := range []string{"account", "transfermoney"} {
		for _, ref := range images(shared, app) {
			if !strings.HasPrefix(ref, regHost+"/") {
				t.Errorf("pod of %s runs %s, not an image from the registry %s", app, ref, regHost)
			}
		}
	}
	for _, ref := range kind.NodeImages(t) {
		if strings.HasPrefix(ref, project.Registry+"/"+name) {
			t.Errorf("the node's containerd holds the side-loaded devenv image %s", ref)
		}
	}
	t.Logf("first up: %d blobs uploaded", first)

	// A save is written into the running container through the API.
	wctx, stop := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- envA.Watch(wctx, filesA) }()
	if err := testenv.Eventually(ctx, 30*time.Second, 300*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "watching 2 services") {
			return errors.New("watcher not started")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tm, "version.go"), []byte("package main\n\nconst version = \"v2\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Eventually(ctx, 3*time.Minute, 500*time.Millisecond, func() error {
		v, err := get(shared, "/version")
		if err == nil && v != "v2" {
			err = fmt.Errorf("version %q, want v2", v)
		}
		return err
	}); err != nil {
		t.Fatalf("the save did not reach the pod: %v", err)
	}
	if !strings.Contains(out.String(), "(updated in place)") {
		t.Error("the save was not a live update (no \"updated in place\")")
	}
	stop()
	if err := <-watchErr; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("watch: %v", err)
	}
	envA.Close()

	// up again: the v2 image goes to the registry, one layer (plus its config).
	before = uploads()
	envA, err = Up(ctx, a, opts)
	if err != nil {
		t.Fatalf("second up in %s: %v", shared, err)
	}
	envA.Close()
	if n := uploads() - before; n != 2 {
		t.Errorf("up after a one-line change uploaded %d blobs, want 2 (the changed layer and the config)", n)
	}
	// And once more: nothing changed, nothing uploaded.
	before = uploads()
	envA, err = Up(ctx, a, opts)
	if err != nil {
		t.Fatalf("third up in %s: %v", shared, err)
	}
	envA.Close()
	if n := uploads() - before; n != 0 {
		t.Errorf("up with nothing changed uploaded %d blobs", n)
	}

	// The same project in a namespace devenv creates.
	b, _ := load("own-"+name, "")
	envB, err := Up(ctx, b, opts)
	if err != nil {
		t.Fatalf("up in %s: %v", b.Namespace, err)
	}
	envB.Close()
	if envA.Kafka == nil || envB.Kafka == nil || envA.Kafka.ContainerID == envB.Kafka.ContainerID {
		t.Fatalf("the two namespaces share a Kafka container (or have none): %+v %+v", envA.Kafka, envB.Kafka)
	}
	for _, ns := range []string{shared, b.Namespace} {
		if err := testenv.Eventually(ctx, time.Minute, time.Second, func() error { _, err := get(ns, "/version"); return err }); err != nil {
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

	// Down of B: A keeps serving; B's namespace and containers are gone.
	if err := Down(ctx, b, DownOptions{Options: opts}); err != nil {
		t.Fatalf("down of %s: %v", b.Namespace, err)
	}
	if _, err := get(shared, "/version"); err != nil {
		t.Errorf("after down of the other namespace: %v", err)
	}
	if err := testenv.Eventually(ctx, 2*time.Minute, time.Second, func() error {
		if _, err := k.Client.CoreV1().Namespaces().Get(ctx, b.Namespace, metav1.GetOptions{}); err == nil {
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
	if left, err := k.Client.AppsV1().Deployments(shared).List(ctx, metav1.ListOptions{}); err != nil || len(left.Items) != 0 {
		t.Errorf("deployments left in %s after down: %v", shared, err)
	}
	for _, system := range []string{"kube-system", "default"} {
		if _, err := k.Client.CoreV1().Namespaces().Get(ctx, system, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s: %v", system, err)
		}
	}
	if err := k.Ping(ctx); err != nil {
		t.Errorf("the cluster after down: %v", err)
	}
	if strings.Contains(out.String(), "deleting cluster") {
		t.Error("down tried to delete the cluster devenv did not create")
	}

	// kafka.external: a broker devenv does not run, at a fixed IP on a
	// Docker network the test creates and the node joins.
	netName := "net-" + name
	brokerIP := createNetwork(t, ctx, docker, netName)
	brokerKey := "broker-" + name
	ep, err := kafka.Ensure(ctx, kafka.Spec{Project: brokerKey, Image: project.DefaultKafkaImage, Network: netName, IP: brokerIP.String(), Port: 9092},
		kafka.Options{Docker: docker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kafka.Remove(context.Background(), docker, brokerKey, true) })
	testenv.DockerCLI(t, "network", "connect", netName, kind.Name+"-control-plane")
	t.Cleanup(func() {
		_ = exec.Command("docker", "network", "disconnect", "-f", netName, kind.Name+"-control-plane").Run()
	})
	for _, tc := range []struct{ what, external string }{
		{"ip", ep.InternalAddress},
		{"dns", ep.Name + ":9092"}, // the broker's container name, resolved by Docker's DNS
	} {
		cfg, _ := load("ext-"+tc.what+"-"+name, "kafka: {external: "+tc.external+"}\n")
		env, err := Up(ctx, cfg, opts)
		if err != nil {
			t.Fatalf("up with kafka.external %s: %v", tc.external, err)
		}
		env.Close()
		if _, found, _ := kafka.Find(ctx, docker, projectKey(cfg)); found {
			t.Errorf("%s: devenv started a Kafka container beside kafka.external", tc.what)
		}
		svc, err := k.Client.CoreV1().Services(cfg.Namespace).Get(ctx, "kafka", metav1.GetOptions{})
		switch {
		case err != nil:
			t.Fatal(err)
		case tc.what == "dns" && (svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName != ep.Name):
			t.Errorf("kafka Service for a DNS name: type %s externalName %q", svc.Spec.Type, svc.Spec.ExternalName)
		case tc.what == "ip" && svc.Spec.Selector != nil:
			t.Errorf("kafka Service for an IP has a selector %v", svc.Spec.Selector)
		}
		// A pod produces through kafka:9092; the host reads it from the broker.
		key := "ext-" + tc.what
		body := []byte(`{"from":"A-1","to":"A-2","amount":3}`)
		if err := testenv.Eventually(ctx, 2*time.Minute, time.Second, func() error {
			b, err := testenv.Proxy(ctx, k, cfg.Namespace, "POST", "transfermoney:8080", "/transfers", body)
			if err != nil {
				return fmt.Errorf("POST /transfers: %v: %s", err, b)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if _, err := consumeAll(ctx, ep.HostAddress, "transfers", 1); err != nil {
			t.Errorf("%s: reading the pod's transfer from the broker: %v", tc.what, err)
		}
		// The host produces; the pod consumes through kafka:9092.
		cl, err := kgo.NewClient(kgo.SeedBrokers(ep.HostAddress))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "transfers", Key: []byte(key + "-from-host"), Value: []byte(`{"note":"hi"}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if err := testenv.Eventually(ctx, time.Minute, time.Second, func() error {
			s, err := get(cfg.Namespace, "/audit")
			if err == nil && !strings.Contains(s, key+"-from-host") {
				err = fmt.Errorf("the pod has not consumed the host's record: %s", s)
			}
			return err
		}); err != nil {
			t.Errorf("%s: %v", tc.what, err)
		}
		if err := Down(ctx, cfg, DownOptions{Options: opts}); err != nil {
			t.Errorf("down with kafka.external: %v", err)
		}
		if _, err := kafka.Topics(ctx, ep.HostAddress); err != nil {
			t.Errorf("the external broker after down: %v", err)
		}
	}
}

// createNetwork creates a Docker network with a subnet of its own (a fixed
// IP needs one) and returns an address in it for the broker; the network
// is removed when the test ends.
func createNetwork(tb testing.TB, ctx context.Context, docker *client.Client, name string) netip.Addr {
	tb.Helper()
	for third := 201; third < 250; third++ {
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", third))
		_, err := docker.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}},
		})
		if err != nil {
			continue // the subnet overlaps another network: try the next
		}
		tb.Cleanup(func() { _, _ = docker.NetworkRemove(context.Background(), name, client.NetworkRemoveOptions{}) })
		return netip.MustParseAddr(fmt.Sprintf("10.213.%d.77", third))
	}
	tb.Fatal("no free subnet for the test network")
	return netip.Addr{}
}
