package cluster

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
)

const (
	nodeImage = "devenv.local/kind-node:v1.37.2"
	testLabel = "devenv.dev/test" // on every container and image the tests make
	testValue = "cluster-it"
)

// suite holds what the integration tests share: one cluster and one test image.
var suite struct {
	once       sync.Once
	err        error
	c          *Cluster
	spec       Spec
	opts       Options
	result     Result
	createTook time.Duration

	imgOnce sync.Once
	imgErr  error
	image   string

	netCreated bool
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if suite.c != nil || suite.image != "" || suite.netCreated {
		teardown()
	}
	os.Exit(code)
}

func teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if suite.c != nil {
		start := time.Now()
		if err := Delete(ctx, suite.spec.Name, suite.spec.Kubeconfig, Options{}); err != nil {
			fmt.Fprintln(os.Stderr, "teardown:", err)
		}
		fmt.Fprintf(os.Stderr, "timing: cluster delete %s\n", time.Since(start).Round(100*time.Millisecond))
		os.RemoveAll(filepath.Dir(suite.spec.Kubeconfig))
	}
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		return
	}
	defer docker.Close()
	res, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", testLabel+"="+testValue)})
	if err == nil {
		for _, c := range res.Items {
			_, _ = docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	// The images the tests built (the echo image and those derived from
	// it) carry the test label: remove them all, newest (children) first.
	if imgs, err := docker.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", testLabel+"="+testValue)}); err == nil {
		slices.SortFunc(imgs.Items, func(a, b image.Summary) int { return cmp.Compare(b.Created, a.Created) })
		for _, img := range imgs.Items {
			_, _ = docker.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		}
	}
	if suite.image != "" {
		_, _ = docker.ImageRemove(ctx, suite.image, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	}
	if suite.netCreated {
		if n, err := docker.NetworkInspect(ctx, NetworkName, client.NetworkInspectOptions{}); err == nil && len(n.Network.Containers) == 0 {
			_, _ = docker.NetworkRemove(ctx, NetworkName, client.NetworkRemoveOptions{})
		}
	}
}

// echoApp is the YAML of a Deployment and a Service named name running the
// echo image (container "echo", serving on 8080; the Service on port 80).
func echoApp(ns, name, image string) string {
	return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  replicas: 1
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: ` + image + `
        imagePullPolicy: Never
        args: [serve, ":8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  selector: {app: ` + name + `}
  ports: [{name: http, port: 80, targetPort: 8080}]
`
}

func randSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func testDocker(t *testing.T) *client.Client {
	t.Helper()
	docker, err := dockerx.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.Close() })
	return docker
}

// requireNodeImage skips while the node image is not built, unless
// DEVENV_REQUIRE_IMAGES is set (CI), where it fails.
func requireNodeImage(t *testing.T, docker *client.Client) {
	t.Helper()
	if _, err := docker.ImageInspect(context.Background(), nodeImage); err != nil {
		if os.Getenv("DEVENV_REQUIRE_IMAGES") != "" {
			t.Fatalf("node image %s is missing and DEVENV_REQUIRE_IMAGES is set: %v", nodeImage, err)
		}
		t.Skipf("node image %s is not built yet (set DEVENV_REQUIRE_IMAGES to fail instead): %v", nodeImage, err)
	}
}

// sharedCluster creates (once) the package's test cluster.
func sharedCluster(t *testing.T) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	docker := testDocker(t)
	requireNodeImage(t, docker)
	suite.once.Do(func() {
		ctx := context.Background()
		if _, err := docker.NetworkInspect(ctx, NetworkName, client.NetworkInspectOptions{}); err != nil {
			suite.netCreated = true
		}
		dir, err := os.MkdirTemp("", "devenv-it-kubeconfig-")
		if err != nil {
			suite.err = err
			return
		}
		suite.spec = Spec{
			Name:       "devenv-it-" + randSuffix(),
			Image:      nodeImage,
			Kubeconfig: filepath.Join(dir, "kubeconfig"),
			Wait:       3 * time.Minute,
		}
		suite.opts = Options{Log: log.New(os.Stderr, testing.Verbose()).Slog()}
		if _, suite.err = InstallPrivilegedShim(ctx, nodeImage, suite.opts); suite.err != nil {
			return
		}
		start := time.Now()
		suite.c, suite.result, suite.err = Ensure(ctx, suite.spec, suite.opts)
		suite.createTook = time.Since(start)
		fmt.Fprintf(os.Stderr, "timing: cluster create (%s) %s\n", suite.result, suite.createTook.Round(100*time.Millisecond))
	})
	if suite.err != nil {
		t.Fatalf("creating the test cluster: %v", suite.err)
	}
	return suite.c
}

// testImage builds (once) a FROM-scratch image holding testdata/echo.
func testImage(t *testing.T, docker *client.Client) string {
	t.Helper()
	suite.imgOnce.Do(func() {
		ctx := context.Background()
		dir := t.TempDir()
		bin := filepath.Join(dir, "echo")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/echo")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			suite.imgErr = fmt.Errorf("building echo: %v\n%s", err, out)
			return
		}
		binary, err := os.ReadFile(bin)
		if err != nil {
			suite.imgErr = err
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		files := []struct {
			name string
			mode int64
			data []byte
		}{
			{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY echo /echo\nENTRYPOINT [\"/echo\"]\nCMD [\"serve\", \":8080\"]\n")},
			{"echo", 0o755, binary},
		}
		for _, f := range files {
			_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))})
			_, _ = tw.Write(f.data)
		}
		_ = tw.Close()
		ref := "devenv.local/it-echo:" + randSuffix()
		res, err := docker.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, Labels: map[string]string{testLabel: testValue}})
		if err != nil {
			suite.imgErr = fmt.Errorf("building test image: %w", err)
			return
		}
		defer res.Body.Close()
		dec := json.NewDecoder(res.Body)
		for {
			var msg struct {
				Error string `json:"error"`
			}
			if err := dec.Decode(&msg); err == io.EOF {
				break
			} else if err != nil {
				suite.imgErr = err
				return
			}
			if msg.Error != "" {
				suite.imgErr = fmt.Errorf("building test image: %s", msg.Error)
				return
			}
		}
		suite.image = ref
	})
	if suite.imgErr != nil {
		t.Fatal(suite.imgErr)
	}
	return suite.image
}

// objs decodes a multi-document YAML string.
func objs(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, d := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// fetch runs a pod of the test image doing "get url" and returns its output.
func fetch(t *testing.T, c *Cluster, image, ns, url string) string {
	t.Helper()
	// One retry with a fresh pod: a pod that starts while kube-proxy has not
	// programmed a brand-new Service yet can keep hitting a stale path. The
	// first failure is logged with what the cluster had, to diagnose it.
	out, err := tryFetch(t, c, image, ns, url)
	if err == nil {
		return out
	}
	slices, _ := c.Client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{})
	svcs, _ := c.Client.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	var seen []string
	for _, sl := range slices.Items {
		for _, e := range sl.Endpoints {
			seen = append(seen, fmt.Sprintf("slice %s: %v", sl.Name, e.Addresses))
		}
	}
	for _, sv := range svcs.Items {
		seen = append(seen, fmt.Sprintf("service %s: %s %v", sv.Name, sv.Spec.ClusterIP, sv.Spec.Ports))
	}
	t.Logf("get %s failed once (%v); the namespace has %v; retrying with a new pod", url, err, seen)
	out, err = tryFetch(t, c, image, ns, url)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryFetch(t *testing.T, c *Cluster, image, ns, url string) (string, error) {
	t.Helper()
	ctx := context.Background()
	name := "get-" + randSuffix()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "get", Image: image, Args: []string{"get", url}, ImagePullPolicy: corev1.PullNever,
			}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer c.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
	var phase corev1.PodPhase
	err := poll(ctx, 2*time.Minute, time.Second, func() (bool, error) {
		got, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		phase = got.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, fmt.Errorf("pod is %s", phase)
	})
	if err != nil {
		return "", fmt.Errorf("get %s: %v", url, err)
	}
	out, _ := c.Client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if phase != corev1.PodSucceeded {
		return "", fmt.Errorf("get %s failed: %s", url, out)
	}
	return string(out), nil
}

func TestIntegrationEnsure(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	if suite.result != Created && suite.result != Recreated {
		t.Errorf("first Ensure: %s", suite.result)
	}
	t.Logf("first Ensure: %s in %s", suite.result, suite.createTook)
	if c.Context != "kind-"+suite.spec.Name {
		t.Errorf("context %q", c.Context)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("nodes: %v %v", nodes, err)
	}
	// The cluster DNS's readiness probe looks every second (quickDNS).
	dns, err := c.Client.AppsV1().Deployments("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range dns.Spec.Template.Spec.Containers {
		if ctr.Name == "coredns" && (ctr.ReadinessProbe == nil || ctr.ReadinessProbe.PeriodSeconds != dnsProbePeriod) {
			t.Errorf("coredns readiness probe %+v, want every %ds", ctr.ReadinessProbe, dnsProbePeriod)
		}
	}
	if err := c.WaitRollout(context.Background(), "kube-system", "coredns", 3*time.Minute); err != nil {
		t.Errorf("cluster DNS after the probe change: %v", err)
	}

	start := time.Now()
	c2, res, err := Ensure(context.Background(), suite.spec, suite.opts)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "timing: cluster reuse %s\n", took.Round(10*time.Millisecond))
	if res != Reused {
		t.Errorf("second Ensure: %s, want reused", res)
	}
	if took > 15*time.Second {
		t.Errorf("reuse took %s", took)
	}
	if _, err := c2.Client.Discovery().ServerVersion(); err != nil {
		t.Error(err)
	}
	if _, err := Connect(context.Background(), suite.spec.Name, suite.spec.Kubeconfig); err != nil {
		t.Errorf("Connect: %v", err)
	}
	if _, err := Connect(context.Background(), "devenv-it-nope", suite.spec.Kubeconfig); err == nil {
		t.Error("Connect to a missing cluster should fail")
	}
}

func TestIntegrationLoadImageAndService(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	image := testImage(t, docker)
	ctx := context.Background()

	// Before the load, the one-listing check says the nodes lack it.
	if missing, err := c.MissingImages(ctx, docker, []string{image}); err != nil || !slices.Equal(missing, []string{image}) {
		t.Fatalf("before the load MissingImages = %q, %v; want the image", missing, err)
	}
	start := time.Now()
	loaded, err := c.LoadImage(ctx, docker, image)
	if err != nil || !loaded {
		t.Fatalf("first load: %v %v", loaded, err)
	}
	fmt.Fprintf(os.Stderr, "timing: image load %s\n", time.Since(start).Round(10*time.Millisecond))
	loaded, err = c.LoadImage(ctx, docker, image)
	if err != nil || loaded {
		t.Fatalf("second load should be skipped: %v %v", loaded, err)
	}
	if missing, err := c.MissingImages(ctx, docker, []string{image}); err != nil || len(missing) != 0 {
		t.Fatalf("after the load MissingImages = %q, %v; want none", missing, err)
	}

	// The nodes' status lists a loaded content-tagged image within the
	// kubelet's status period, and never one that was not loaded.
	inspect, err := docker.ImageInspect(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	hexID := strings.TrimPrefix(inspect.ID, "sha256:")
	tagged := "devenv.local/it-unlisted:" + hexID[:12]
	absent := "devenv.local/it-unlisted:" + strings.Repeat("0", 12)
	if _, err := docker.ImageTag(ctx, client.ImageTagOptions{Source: inspect.ID, Target: tagged}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadImage(ctx, docker, tagged); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		unlisted, err := c.Unlisted(ctx, []string{tagged, absent})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(unlisted, absent) {
			t.Fatalf("Unlisted = %q: an image never loaded counted as listed", unlisted)
		}
		if len(unlisted) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes' status did not list %s within 90s", tagged)
		}
		time.Sleep(2 * time.Second)
	}

	ns := "it-svc"
	res, err := c.Apply(ctx, objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
`+echoApp(ns, "echo", image)), ApplyOptions{Selector: map[string]string{"devenv.dev/project": "it-svc"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 3 {
		t.Errorf("created %v", res)
	}
	start = time.Now()
	if err := c.WaitRollout(ctx, ns, "echo", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("rollout took %s", time.Since(start))
	out := fetch(t, c, image, ns, "http://echo."+ns+".svc.cluster.local:80/")
	if !strings.Contains(out, "hello from echo-") {
		t.Errorf("service answer: %q", out)
	}
}

func TestIntegrationBridge(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	docker := testDocker(t)
	image := testImage(t, docker)
	ctx := context.Background()
	if _, err := c.LoadImage(ctx, docker, image); err != nil {
		t.Fatal(err)
	}
	net, err := EnsureNetwork(ctx, Options{Docker: docker})
	if err != nil {
		t.Fatal(err)
	}
	if !net.FixedIPs {
		// Someone else (kind itself, another tool) made the network: Docker
		// assigns the addresses and the slice follows them.
		t.Logf("the kind network %s was not created by devenv: testing the dynamic-IP path", net.Subnet)
	}
	name := "devenv-it-ext-" + randSuffix()
	run := func(ip netip.Addr) netip.Addr {
		t.Helper()
		es := &network.EndpointSettings{}
		if ip.IsValid() {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		}
		cr, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:             name,
			Config:           &container.Config{Image: image, Cmd: []string{"serve", ":9090"}, Labels: map[string]string{testLabel: testValue}},
			HostConfig:       &container.HostConfig{NetworkMode: container.NetworkMode(NetworkName)},
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{NetworkName: es}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := docker.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		return containerIP(t, docker, name)
	}
	taken, err := TakenIPs(ctx, docker, net)
	if err != nil {
		t.Fatal(err)
	}
	var ip1 netip.Addr
	if net.FixedIPs {
		ip1 = PickIP(net, taken, netip.Addr{})
		if got := run(ip1); got != ip1 {
			t.Fatalf("container got %s, want fixed %s", got, ip1)
		}
	} else {
		ip1 = run(netip.Addr{})
	}
	ns := "it-bridge"
	bridge := func(ip netip.Addr) {
		t.Helper()
		_, err := c.Apply(ctx, objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: `+ns+`}
spec:
  ports: [{name: http, port: 9092, targetPort: 9090}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ext-devenv
  namespace: `+ns+`
  labels: {kubernetes.io/service-name: ext, endpointslice.kubernetes.io/managed-by: devenv}
addressType: IPv4
endpoints: [{addresses: ["`+ip.String()+`"]}]
ports: [{name: http, port: 9090, protocol: TCP}]
`), ApplyOptions{Selector: map[string]string{"devenv.dev/project": "it-bridge"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	url := "http://ext." + ns + ".svc.cluster.local:9092/"
	bridge(ip1)
	if out := fetch(t, c, image, ns, url); !strings.Contains(out, "hello from") {
		t.Fatalf("through the bridge: %q", out)
	}

	timeout := 1
	if _, err := docker.ContainerRestart(ctx, name, client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if got := containerIP(t, docker, name); got != ip1 {
		if net.FixedIPs {
			t.Fatalf("after restart the container has %s, want %s", got, ip1)
		}
		bridge(got) // dynamic addresses may move: re-point
	}
	if out := fetch(t, c, image, ns, url); !strings.Contains(out, "hello from") {
		t.Fatalf("after restart: %q", out)
	}

	if _, err := docker.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	var ip2 netip.Addr
	if net.FixedIPs {
		taken, _ = TakenIPs(ctx, docker, net)
		ip2 = PickIP(net, append(taken, ip1), netip.Addr{})
		if ip2 == ip1 || !ip2.IsValid() {
			t.Fatalf("PickIP gave %s", ip2)
		}
		if got := run(ip2); got != ip2 {
			t.Fatalf("recreated container got %s, want %s", got, ip2)
		}
	} else {
		ip2 = run(netip.Addr{})
	}
	bridge(ip2)
	if out := fetch(t, c, image, ns, url); !strings.Contains(out, "hello from") {
		t.Fatalf("after re-pointing: %q", out)
	}
}

func containerIP(t *testing.T, docker *client.Client, name string) netip.Addr {
	t.Helper()
	in, err := docker.ContainerInspect(context.Background(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ep := in.Container.NetworkSettings.Networks[NetworkName]
	if ep == nil {
		t.Fatalf("container %s is not on network %s", name, NetworkName)
	}
	return ep.IPAddress
}

func TestIntegrationApplyTwiceAndPrune(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	ctx := context.Background()
	ns := "it-apply"
	sel := map[string]string{"devenv.dev/project": "it-apply"}
	all := objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: account, namespace: `+ns+`}
data: {spring.profile: kubernetes, broker: "kafka:9092"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: goes-away, namespace: `+ns+`}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: account, namespace: `+ns+`}
type: Opaque
stringData: {datasource.username: sa, datasource.password: s3cret}
---
apiVersion: v1
kind: Service
metadata: {name: kafka, namespace: `+ns+`}
spec:
  ports: [{name: kafka, port: 9092, targetPort: 9092}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kafka-devenv
  namespace: `+ns+`
  labels: {kubernetes.io/service-name: kafka, endpointslice.kubernetes.io/managed-by: devenv}
addressType: IPv4
endpoints: [{addresses: ["172.18.255.254"]}]
ports: [{name: kafka, port: 9092, protocol: TCP}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: account, namespace: `+ns+`}
spec:
  replicas: 0
  selector: {matchLabels: {app: account}}
  template:
    metadata: {labels: {app: account}}
    spec:
      containers:
      - name: account
        image: devenv.local/account:dev
        envFrom: [{configMapRef: {name: account}}]
`)
	first, err := c.Apply(ctx, all, ApplyOptions{Selector: sel, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created)+len(first.Changed) != len(all) || len(first.Pruned) != 0 {
		t.Errorf("first apply: %+v", first)
	}
	if len(first.Warnings) != 0 {
		t.Errorf("API warnings: %q", first.Warnings)
	}
	second, err := c.Apply(ctx, all, ApplyOptions{Selector: sel, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Unchanged) != len(all) || len(second.Created)+len(second.Changed)+len(second.Pruned) != 0 {
		t.Errorf("second apply should change nothing: %+v", second)
	}
	if len(second.Warnings) != 0 {
		t.Errorf("API warnings: %q", second.Warnings)
	}

	// What a warm up checks instead of applying: every object is at the
	// version the last apply left; a change by someone else is seen.
	same, err := c.Unchanged(ctx, all, sel, second.Versions)
	if err != nil || !same {
		t.Errorf("Unchanged after the second apply = %v, %v; want true", same, err)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "account", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["edited"] = "by hand"
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if same, err := c.Unchanged(ctx, all, sel, second.Versions); err != nil || same {
		t.Errorf("Unchanged after a ConfigMap was edited = %v, %v; want false", same, err)
	}
	again, err := c.Apply(ctx, all, ApplyOptions{Selector: sel, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if same, err := c.Unchanged(ctx, all, sel, again.Versions); err != nil || !same {
		t.Errorf("Unchanged after applying again = %v, %v; want true", same, err)
	}
	scale := []byte(`{"spec":{"replicas":2}}`)
	if _, err := c.Client.AppsV1().Deployments(ns).Patch(ctx, "account", types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if same, err := c.Unchanged(ctx, all, sel, again.Versions); err != nil || same {
		t.Errorf("Unchanged after the Deployment was scaled = %v, %v; want false", same, err)
	}
	if _, err := c.Apply(ctx, all, ApplyOptions{Selector: sel, Prune: true}); err != nil {
		t.Fatal(err)
	}

	unlabelled := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "users-own", Namespace: ns}, Data: map[string]string{"x": "y"}}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, unlabelled, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var fewer []*unstructured.Unstructured
	for _, o := range all {
		if o.GetName() != "goes-away" {
			fewer = append(fewer, o)
		}
	}
	third, err := c.Apply(ctx, fewer, ApplyOptions{Selector: sel, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.Pruned, []string{"ConfigMap/" + ns + "/goes-away"}) {
		t.Errorf("pruned %v", third.Pruned)
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "goes-away", metav1.GetOptions{}); err == nil {
		t.Error("goes-away still exists")
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "users-own", metav1.GetOptions{}); err != nil {
		t.Errorf("unlabelled ConfigMap was touched: %v", err)
	}

	deleted, err := c.DeleteOwned(ctx, "", sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != len(fewer)-1 { // everything but the Namespace
		t.Errorf("DeleteOwned deleted %v", deleted)
	}
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "users-own", metav1.GetOptions{}); err != nil {
		t.Errorf("DeleteOwned touched an unlabelled ConfigMap: %v", err)
	}
}

func TestIntegrationWaitRolloutMissingImage(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	c := sharedCluster(t)
	ctx := context.Background()
	ns := "it-missing"
	_, err := c.Apply(ctx, objs(t, `
apiVersion: v1
kind: Namespace
metadata: {name: `+ns+`}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ghost, namespace: `+ns+`}
spec:
  selector: {matchLabels: {app: ghost}}
  template:
    metadata: {labels: {app: ghost}}
    spec:
      containers: [{name: ghost, image: "devenv.local/not-loaded:1"}]
`), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.WaitRollout(ctx, ns, "ghost", 20*time.Second)
	if err == nil {
		t.Fatal("rollout of a missing image should time out")
	}
	if !strings.Contains(err.Error(), "image devenv.local/not-loaded:1 is not in the cluster") {
		t.Errorf("reason should name the image: %v", err)
	}
	if took := time.Since(start); took > 40*time.Second {
		t.Errorf("took %s", took)
	}
	t.Log(err)
}

// TestIntegrationEnsureRepairs must stay the last test of the file: it breaks
// the shared cluster and lets Ensure recreate it.
func TestIntegrationEnsureRepairs(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs Docker and kind")
	}
	sharedCluster(t)
	ctx := context.Background()
	docker := testDocker(t)

	// A lost kubeconfig entry is written again; the cluster is reused.
	cfg, err := clientcmd.LoadFromFile(suite.spec.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	delete(cfg.Contexts, "kind-"+suite.spec.Name)
	if err := clientcmd.WriteToFile(*cfg, suite.spec.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	c, res, err := Ensure(ctx, suite.spec, suite.opts)
	if err != nil || res != Reused {
		t.Fatalf("after losing the kubeconfig entry: %v %v", res, err)
	}
	if _, err := c.Client.Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}

	// A stopped node means a broken cluster: Ensure recreates it.
	timeout := 1
	if _, err := docker.ContainerStop(ctx, suite.spec.Name+"-control-plane", client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, res, err = Ensure(ctx, suite.spec, suite.opts)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "timing: cluster recreate %s\n", time.Since(start).Round(100*time.Millisecond))
	if res != Recreated {
		t.Errorf("after stopping the node: %s, want recreated", res)
	}
	if _, err := c.Client.Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}
	suite.c = c
}
