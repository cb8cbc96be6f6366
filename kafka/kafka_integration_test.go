package kafka

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/images/kfake"
	"github.com/devenv-tool/devenv/internal/images/standin"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
)

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ensureBrokerImage builds the kfake stand-in when it is missing or stale.
func ensureBrokerImage(ctx context.Context, t *testing.T, cli *client.Client) {
	t.Helper()
	s := kfake.StandIn()
	parts, err := s.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	hash := standin.Hash(parts)
	if img, err := cli.ImageInspect(ctx, s.Ref); err == nil && img.Config != nil && img.Config.Labels[standin.LabelRecipe] == hash {
		return
	}
	t.Logf("building %s", s.Ref)
	if err := s.Build(ctx, &standin.Env{Docker: cli, Log: log.Nop(), CacheDir: t.TempDir()}, s.Labels(hash)); err != nil {
		t.Fatal(err)
	}
}

// buildClientImage compiles testdata/kclient statically and packs it in a
// FROM scratch image.
func buildClientImage(ctx context.Context, t *testing.T, cli *client.Client, ref string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kclient")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/kclient")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kclient: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	df := []byte("FROM scratch\nCOPY kclient /kclient\nENTRYPOINT [\"/kclient\"]\n")
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{{"Dockerfile", 0o644, df}, {"kclient", 0o755, b}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if bytes.Contains(out, []byte(`"errorDetail"`)) {
		t.Fatalf("building %s: %s", ref, out)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
}

// runClient runs the test client image on the network and returns its output.
func runClient(ctx context.Context, t *testing.T, cli *client.Client, ref, netName string, args ...string) string {
	t.Helper()
	stdout, stderr, code := testenv.RunContainer(ctx, t, cli,
		&container.Config{Image: ref, Cmd: args, Labels: map[string]string{"devenv.dev/test": "kafka"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(netName)})
	if code != 0 {
		t.Fatalf("kclient %v exited %d: %s%s", args, code, stdout, stderr)
	}
	return stdout
}

func hostProduce(ctx context.Context, t *testing.T, addr, topic string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("producing to %s via %s: %v", topic, addr, err)
		}
	}
}

func hostConsume(ctx context.Context, t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s via %s: only %v before the timeout", topic, addr, got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

func partitions(ctx context.Context, t *testing.T, addr, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return len(td[topic].Partitions)
}

func TestIntegrationEnsure(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker and builds the kfake stand-in")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cli, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ensureBrokerImage(ctx, t, cli)

	id := randHex(t, 4)
	project := "test" + id
	netName := "devenv-test-" + id
	n, _ := rand.Int(rand.Reader, big.NewInt(200))
	third := byte(20 + n.Int64())
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, third, 0}), 24)
	brokerIP := netip.AddrFrom4([4]byte{10, 213, third, 10}).String()
	if _, err := cli.NetworkCreate(ctx, netName, client.NetworkCreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}},
		Labels: map[string]string{"devenv.dev/test": "kafka"},
	}); err != nil {
		t.Fatal(err)
	}
	clientRef := "devenv-test/kclient:" + id
	t.Cleanup(func() {
		cctx := context.Background()
		if err := Remove(cctx, cli, project, true); err != nil {
			t.Errorf("Remove: %v", err)
		}
		if _, err := cli.NetworkRemove(cctx, netName, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("removing network: %v", err)
		}
		if _, err := cli.VolumeInspect(cctx, VolumeName(project), client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("volume %s still there after Remove(volumes=true): %v", VolumeName(project), err)
		}
	})
	buildClientImage(ctx, t, cli, clientRef)

	hostPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	spec := Spec{
		Project: project, Network: netName, IP: brokerIP, HostPort: hostPort,
		Memory: 256 << 20, Topics: []Topic{{Name: "orders", Partitions: 3}},
		ReadyTimeout: 60 * time.Second,
	}
	opts := Options{Docker: cli, Log: log.New(&logBuf, true).Slog()}
	if err := ConfigureTestcontainers(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ep, err := Ensure(ctx, spec, opts)
	if err != nil {
		t.Fatalf("Ensure: %v\nlog:\n%s", err, logBuf.String())
	}
	t.Logf("Ensure (create) took %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logBuf.String(), "waiting up to 1m0s for kafka") {
		t.Errorf("log does not say how long it waits:\n%s", logBuf.String())
	}
	wantHost := "127.0.0.1:" + itoa(hostPort)
	if ep.IP != brokerIP || ep.Port != 9092 || ep.InternalAddress != brokerIP+":9092" || ep.HostAddress != wantHost ||
		ep.Kind != KindKfake || ep.Name != "devenv-"+project+"-kafka" || ep.Image != DefaultImage {
		t.Fatalf("endpoint = %+v", ep)
	}
	if got := partitions(ctx, t, ep.HostAddress, "orders"); got != 3 {
		t.Errorf("orders has %d partitions, want 3", got)
	}

	// Host -> network and network -> host.
	hostProduce(ctx, t, ep.HostAddress, "from-host", "h1", "h2")
	if out := runClient(ctx, t, cli, clientRef, netName, "consume", ep.InternalAddress, "from-host", "2"); !sameLines(out, "h1", "h2") {
		t.Errorf("in-network consumer read %q", out)
	}
	runClient(ctx, t, cli, clientRef, netName, "produce", ep.InternalAddress, "from-pod", "p1", "p2", "p3")
	if got := hostConsume(ctx, t, ep.HostAddress, "from-pod", 3); !slices.Equal(got, []string{"p1", "p2", "p3"}) {
		t.Errorf("host consumer read %v", got)
	}

	// docker restart keeps address, port and data.
	start = time.Now()
	if _, err := cli.ContainerRestart(ctx, ep.ContainerID, client.ContainerRestartOptions{}); err != nil {
		t.Fatal(err)
	}
	after, err := inspect(ctx, cli, ep.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if after != ep {
		t.Errorf("after restart endpoint = %+v, want %+v", after, ep)
	}
	if err := waitReady(ctx, cli, Spec{ReadyTimeout: 30 * time.Second, IP: brokerIP}, after, log.Nop()); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart to ready took %s", time.Since(start).Round(time.Millisecond))
	if got := hostConsume(ctx, t, ep.HostAddress, "from-host", 2); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("after restart read %v", got)
	}

	// Same spec: the same container.
	start = time.Now()
	again, err := Ensure(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Ensure (reuse) took %s", time.Since(start).Round(time.Millisecond))
	if again.ContainerID != ep.ContainerID {
		t.Errorf("Ensure with the same spec recreated the container")
	}

	// A stopped container is started again.
	if _, err := cli.ContainerStop(ctx, ep.ContainerID, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	if again, err = Ensure(ctx, spec, opts); err != nil || again.ContainerID != ep.ContainerID {
		t.Fatalf("Ensure after stop: %v (id %s, want %s)", err, again.ContainerID, ep.ContainerID)
	}

	// Changed env: a new container on the same volume, so the data stays.
	spec.Env = map[string]string{"DEVENV_KAFKA_LOG": "info"}
	spec.Topics = []Topic{{Name: "orders", Partitions: 5}}
	changed, err := Ensure(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	if changed.ContainerID == ep.ContainerID {
		t.Error("Ensure with a changed env reused the old container")
	}
	if got := hostConsume(ctx, t, changed.HostAddress, "from-pod", 3); !slices.Equal(got, []string{"p1", "p2", "p3"}) {
		t.Errorf("after recreate read %v", got)
	}
	if got := partitions(ctx, t, changed.HostAddress, "orders"); got != 5 {
		t.Errorf("orders has %d partitions after raising to 5", got)
	}
	if err := EnsureTopics(ctx, changed.HostAddress, []Topic{{Name: "orders", Partitions: 2}}); err == nil || !strings.Contains(err.Error(), "cannot remove partitions") {
		t.Errorf("lowering partitions: err = %v", err)
	}
	list, err := listContainers(ctx, cli, project)
	if err != nil || len(list) != 1 {
		t.Errorf("project has %d kafka containers (%v), want 1", len(list), err)
	}

	found, ok, err := Find(ctx, cli, project)
	if err != nil || !ok || found.ContainerID != changed.ContainerID || found.HostAddress != wantHost {
		t.Errorf("Find = %+v, %v, %v", found, ok, err)
	}
	if _, ok, err := Find(ctx, cli, "nosuchproject"+id); ok || err != nil {
		t.Errorf("Find(unknown) = %v, %v", ok, err)
	}
}

func sameLines(out string, want ...string) bool {
	got := strings.Fields(out)
	slices.Sort(got)
	return slices.Equal(got, want)
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
