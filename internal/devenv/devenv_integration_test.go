package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
	"github.com/devenv-tool/devenv/project"
)

// consumeAll reads every record of a topic from the host listener.
func consumeAll(ctx context.Context, addr, topic string, want int) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return recs, fmt.Errorf("got %d of %d records: %w", len(recs), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs, nil
}

// TestIntegrationCosmos runs the root example end to end on a real kind
// cluster: up, the Kafka bridge from a pod, a broker restart, a second up
// that changes nothing, the inner loop (change, broken build, fix), and down.
func TestIntegrationCosmos(t *testing.T) {
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

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	tm := filepath.Join(tmp, "transfermoney")
	testenv.CopyDir(t, filepath.Join(root, "examples/cosmos/transfermoney"), tm)
	name := testenv.Name("it-")
	override := filepath.Join(tmp, "override.yaml")
	// A declared test that passes only while transfermoney serves v2: it
	// runs after each update of transfermoney while watching.
	if err := os.WriteFile(override, []byte(fmt.Sprintf(`name: %s
cluster: {name: %s}
services:
  transfermoney:
    context: %s
tests:
  version:
    command: 'v=$(curl -fsS "$DEVENV_SERVICE_TRANSFERMONEY_URL/version"); echo "serving $v"; test "$v" = v2'
    services: [transfermoney]
    timeout: 30s
`, name, name, tm)), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(root, "devenv.yaml"), override}
	cfg, err := config.Load(files...)
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.Log{TB: t}
	podLogs := &testenv.Log{}
	opts := Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), Log: log.New(out, true), RolloutTimeout: 4 * time.Minute, PodLogs: podLogs, Live: true, PrivilegedShim: true}
	if err := kafka.ConfigureTestcontainers(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(context.Background(), cfg, DownOptions{Options: opts}); err != nil {
			t.Errorf("down: %v", err)
		}
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})

	t0 := time.Now()
	env, err := Up(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	// Before the cleanup's Down, which waits for the project's lock.
	t.Cleanup(func() { env.Close() })
	t.Logf("cold up took %s", time.Since(t0))
	// The seed's objects are accepted with no warning, but for the v1
	// Endpoints object that devenv.yaml asks for (kafka.endpoints: classic).
	for _, w := range env.LastApply.Warnings {
		if !strings.Contains(w, "v1 Endpoints is deprecated") {
			t.Errorf("the API server warned about the seed's objects: %s", w)
		}
	}
	c := env.Cluster
	ns := cfg.Namespace

	r, err := Status(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Ready {
		b, _ := json.MarshalIndent(r, "", "  ")
		t.Fatalf("status is not ready after up:\n%s", b)
	}

	// A pod publishes to kafka:9092 through the Service and its endpoints;
	// the host reads the same record through the published port.
	transfer := func(amount int) error {
		body := []byte(fmt.Sprintf(`{"from":"A-1","to":"A-2","amount":%d}`, amount))
		b, err := testenv.Proxy(ctx, c, ns, "POST", "transfermoney:8080", "/transfers", body)
		if err != nil {
			return fmt.Errorf("POST /transfers: %v: %s", err, b)
		}
		return nil
	}
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, func() error { return transfer(5) }); err != nil {
		t.Fatal(err)
	}
	recs, err := consumeAll(ctx, env.Kafka.HostAddress, "transfers", 1)
	if err != nil {
		t.Fatalf("consuming on the host: %v", err)
	}
	if !strings.Contains(string(recs[0].Value), `"amount":5`) {
		t.Errorf("record %s is not the transfer of 5", recs[0].Value)
	}

	// The reverse: the host publishes through the published port and the
	// pod's consumer group reads it through kafka:9092 and commits offsets.
	hostCl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.HostAddress))
	if err != nil {
		t.Fatal(err)
	}
	if err := hostCl.ProduceSync(ctx, &kgo.Record{Topic: "transfers", Key: []byte("from-host"), Value: []byte(`{"note":"hello pod"}`)}).FirstErr(); err != nil {
		t.Fatalf("producing on the host: %v", err)
	}
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, func() error {
		b, err := testenv.Proxy(ctx, c, ns, "GET", "transfermoney:8080", "/audit", nil)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "from-host") {
			return fmt.Errorf("the pod has not consumed the host's record: %s", b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, func() error {
		offs, err := kadm.NewClient(hostCl).FetchOffsets(ctx, "transfermoney-audit")
		if err != nil {
			return err
		}
		if o, ok := offs.Lookup("transfers", 0); !ok || o.At < 2 {
			return fmt.Errorf("group transfermoney-audit committed %+v, want offset 2", o)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hostCl.Close()

	// The broker restarts behind devenv's back: same IP, the pod publishes
	// again with no step, earlier records are kept.
	if _, err := docker.ContainerRestart(ctx, env.Kafka.ContainerID, client.ContainerRestartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, func() error { return transfer(7) }); err != nil {
		t.Fatalf("after the broker restarted: %v", err)
	}
	if recs, err = consumeAll(ctx, env.Kafka.HostAddress, "transfers", 3); err != nil {
		t.Fatalf("after the broker restarted: %v", err)
	}
	var amounts []string
	for _, r := range recs {
		for _, a := range []string{`"amount":5`, `"amount":7`} {
			if strings.Contains(string(r.Value), a) && !slices.Contains(amounts, a) {
				amounts = append(amounts, a)
			}
		}
	}
	if len(amounts) != 2 {
		t.Errorf("after the broker restarted the topic holds amounts %v, want the transfer of 5 from before and of 7 from after", amounts)
	}
	env.Close()

	// A second up with nothing changed changes nothing.
	t0 = time.Now()
	env, err = Up(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	t.Logf("warm up took %s", time.Since(t0))
	if n := len(env.LastApply.Created) + len(env.LastApply.Changed) + len(env.LastApply.Pruned); n != 0 {
		t.Errorf("second up changed objects: %+v", env.LastApply)
	}

	// The inner loop: a saved change rolls out; a broken build keeps the
	// old version serving; the fix rolls out.
	wctx, stop := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- env.Watch(wctx, files) }()
	version := func(want string) func() error {
		return func() error {
			b, err := testenv.Proxy(ctx, c, ns, "GET", "transfermoney:8080", "/version", nil)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(b)); got != want {
				return fmt.Errorf("version %q, want %q", got, want)
			}
			return nil
		}
	}
	if err := version("v1")(); err != nil {
		t.Fatal(err)
	}
	// Let the watcher start before the first edit.
	if err := testenv.Eventually(ctx, 30*time.Second, 500*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "watching 2 services") {
			return errors.New("watcher not started")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	setVersion := func(line string) {
		if err := os.WriteFile(filepath.Join(tm, "version.go"), []byte("package main\n\n"+line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The container that serves: a save that changes only files is
	// written into it (live update), it is not replaced.
	container := func() string {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=transfermoney"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				ids = append(ids, p.Name+"/"+cs.ContainerID)
			}
		}
		return strings.Join(ids, ",")
	}
	serving := container()
	t0 = time.Now()
	setVersion(`const version = "v2"`)
	if err := testenv.Eventually(ctx, 3*time.Minute, 500*time.Millisecond, version("v2")); err != nil {
		t.Fatalf("the change did not roll out: %v", err)
	}
	t.Logf("save to serving v2: %s", time.Since(t0))
	// The declared test ran after the update, through the forwarded port.
	if err := testenv.Eventually(ctx, time.Minute, 200*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "✓ test version passed") {
			return errors.New("the declared test did not pass after the update to v2")
		}
		// The cosmos example's own test (devenv.yaml): a transfer through
		// the forwarded port of transfermoney.
		if !strings.Contains(out.String(), "✓ test transfer passed") {
			return errors.New("the cosmos example's test transfer did not pass after the update to v2")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if now := container(); now != serving || !strings.Contains(out.String(), "transfermoney ✓") || !strings.Contains(out.String(), "(updated in place)") {
		t.Errorf("v2 was not written into the running container: before %s, after %s", serving, now)
	}

	setVersion(`const version = "v3" +`) // does not compile
	if err := testenv.Eventually(ctx, 2*time.Minute, 500*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "✗ transfermoney") {
			return errors.New("no build error printed yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := version("v2")(); err != nil {
		t.Fatalf("after a broken build the old version must keep serving: %v", err)
	}
	// A version that builds but exits at once: reported, and the
	// previous files are put back.
	crash := filepath.Join(tm, "crash.go")
	if err := os.WriteFile(crash, []byte("package main\n\nimport \"os\"\n\nfunc init() { println(\"crash on purpose\"); os.Exit(3) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setVersion(`const version = "v3"`)
	if err := testenv.Eventually(ctx, 2*time.Minute, 500*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "exited with code 3") || !strings.Contains(out.String(), "the previous version is serving again") {
			return errors.New("the crash was not reported yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "crash on purpose") {
		t.Errorf("the crash report lacks the container's last log lines")
	}
	if err := testenv.Eventually(ctx, 30*time.Second, 200*time.Millisecond, version("v2")); err != nil {
		t.Fatalf("after a crashing version the previous one must serve again: %v", err)
	}
	if err := os.Remove(crash); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Eventually(ctx, 3*time.Minute, 500*time.Millisecond, version("v3")); err != nil {
		t.Fatalf("the fix did not roll out: %v", err)
	}
	// v3 breaks the declared test: ✗ with its output, and the loop goes on
	// (the configuration change below still applies).
	if err := testenv.Eventually(ctx, time.Minute, 200*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "✗ test version failed") || !strings.Contains(out.String(), "serving v3") {
			return errors.New("the declared test did not fail, with its output, after the update to v3")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if now := container(); now != serving {
		t.Errorf("the container was replaced (before %s, after %s): every save here changes only files", serving, now)
	}
	// Saving a config file re-applies the configuration: the ConfigMap gets
	// the new key and the service's pods restart (the config hash changed).
	before, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "transfermoney", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(override, []byte(fmt.Sprintf(`name: %s
cluster: {name: %s}
services:
  transfermoney:
    context: %s
    config: {greeting: hello from the override}
`, name, name, tm)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Eventually(ctx, 2*time.Minute, 500*time.Millisecond, func() error {
		cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "transfermoney", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["greeting"] != "hello from the override" {
			return fmt.Errorf("ConfigMap transfermoney has %v", cm.Data)
		}
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "transfermoney", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Generation == before.Generation {
			return errors.New("the Deployment was not changed to restart its pods")
		}
		return nil
	}); err != nil {
		t.Fatalf("the config change was not applied: %v", err)
	}
	if err := testenv.Eventually(ctx, 2*time.Minute, 500*time.Millisecond, version("v3")); err != nil {
		t.Fatalf("after the config change: %v", err)
	}

	// The broker is recreated behind devenv's back with another address:
	// the watching loop re-points the endpoints within seconds.
	old := env.Kafka.IP
	if _, err := docker.ContainerRemove(ctx, env.Kafka.ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	newIP := ""
	if env.network.FixedIPs {
		taken, err := cluster.TakenIPs(ctx, docker, env.network)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := netip.ParseAddr(env.Kafka.IP)
		newIP = cluster.PickIP(env.network, append(taken, old), netip.Addr{}).String()
	}
	moved, err := kafka.Ensure(ctx, kafka.Spec{Project: cfg.Name, Image: "devenv.local/kafka:kfake",
		Network: env.network.Name, IP: newIP, Port: cfg.Kafka.Port}, kafka.Options{Docker: docker})
	if err != nil {
		t.Fatal(err)
	}
	if moved.IP == old {
		t.Fatalf("the recreated broker kept address %s; the test needs another", old)
	}
	want := moved.InternalAddress
	if err := testenv.Eventually(ctx, 30*time.Second, 250*time.Millisecond, func() error {
		if got := serviceEndpoints(ctx, c, ns, cfg.Kafka.Service); len(got) != 1 || got[0] != want {
			return fmt.Errorf("endpoints %v, want [%s]", got, want)
		}
		return nil
	}); err != nil {
		t.Fatalf("the watching loop did not re-point the endpoints: %v", err)
	}

	stop()
	if err := <-watchErr; err != nil {
		t.Errorf("Watch returned %v after Ctrl-C, want nil", err)
	}
	env.Close()

	// While watching, the pods' logs streamed prefixed with their service,
	// including the containers each image swap restarted and the pods of
	// each rollout.
	for _, want := range []string{"[transfermoney] ", "transfermoney v2 listening", "transfermoney v3 listening", "[account] "} {
		if !strings.Contains(podLogs.String(), want) {
			t.Errorf("the streamed pod logs lack %q:\n%s", want, podLogs.String())
		}
	}
	// devenv logs account: the account pod's log, prefixed.
	var accountLogs strings.Builder
	if err := Logs(ctx, cfg, opts, []string{"account"}, LogOptions{Out: &accountLogs}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(accountLogs.String(), "[account] ") || !strings.Contains(accountLogs.String(), "listening on :8080") {
		t.Errorf("devenv logs account printed:\n%s", accountLogs.String())
	}
	if err := Logs(ctx, cfg, opts, []string{"acount"}, LogOptions{Out: &accountLogs}); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("logs of a misspelt service: %v, want a config error", err)
	}

	// Down leaves nothing labelled behind.
	if err := Down(ctx, cfg, DownOptions{Options: opts}); err != nil {
		t.Fatalf("down: %v", err)
	}
	left, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", project.ID{Name: cfg.Name}.Selector("")...)})
	if err != nil || len(left.Items) > 0 {
		t.Errorf("containers left after down: %v %v", left.Items, err)
	}
	if _, err := cluster.Connect(ctx, cfg.Cluster.Name, opts.Kubeconfig); !errors.Is(err, cluster.ErrNoCluster) {
		t.Errorf("cluster still there after down: %v", err)
	}
}

// serviceEndpoints is where the Service's endpoint slices point (none when
// the cluster does not answer).
func serviceEndpoints(ctx context.Context, c *cluster.Cluster, ns, svc string) []string {
	got, _ := c.EndpointAddresses(ctx, ns, svc)
	return got
}
