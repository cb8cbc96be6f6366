package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/h2"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
)

// TestIntegrationArtifacts brings up a small project (Kafka with a topic, an
// H2 server, one probe service with a Secret), has the probe's container
// exit once so that the kubelet restarts it, and collects the artifacts: every
// file is there, none is an error file, the logs hold what the containers
// printed (before and after the restart), and the Secret's value is in none.
func TestIntegrationArtifacts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	testenv.RequireImage(t, docker, config.DefaultH2Image, "H2")

	// The probe of TestIntegrationH2Repoint, in a FROM-scratch image.
	tmp := t.TempDir()
	testenv.GoService(t, ctx, "./testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-art-")
	secret := "artifacts-secret-" + testenv.Name("")
	file := filepath.Join(tmp, "devenv.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
kafka: {topics: [artifacts]}
h2: {mode: server}
services:
  probe:
    context: ./probe
    port: 8080
    config: {h2.address: "h2:9092"}
    secrets:
      probe.token: {env: DEVENV_ARTIFACTS_TEST_TOKEN_UNSET, default: %s}
`, name, secret)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.Log{TB: t}
	opts := Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), Log: log.New(out, true), RolloutTimeout: 4 * time.Minute, PrivilegedShim: true}
	if err := kafka.ConfigureTestcontainers(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(context.Background(), cfg, DownOptions{Options: opts}); err != nil {
			t.Errorf("down: %v", err)
		}
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})

	env, err := Up(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	// Before the cleanup's Down, which waits for the project's lock.
	t.Cleanup(func() { env.Close() })
	if env.Kafka == nil || env.H2 == nil {
		t.Fatal("up started no Kafka broker or no H2 server")
	}
	c, ns := env.Cluster, cfg.Namespace

	// One record, so that the topic's end offset is 1.
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.HostAddress))
	if err != nil {
		t.Fatal(err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "artifacts", Value: []byte("one")}).FirstErr()
	cl.Close()
	if err != nil {
		t.Fatalf("producing on the host: %v", err)
	}

	// The probe exits once; the kubelet restarts its container in the pod.
	_, _ = testenv.Proxy(ctx, c, ns, "GET", "probe:8080", "/exit", nil) // the connection may drop as it exits
	if err := testenv.Eventually(ctx, 2*time.Minute, 500*time.Millisecond, func() error {
		pods, err := c.PodStatuses(ctx, ns, "app=probe")
		if err != nil {
			return err
		}
		if len(pods) != 1 || len(pods[0].Containers) != 1 {
			return fmt.Errorf("probe pods %+v, want one with one container", pods)
		}
		if cs := pods[0].Containers[0]; cs.RestartCount < 1 || !cs.Ready {
			return fmt.Errorf("probe container restarted %d times, ready %v; want restarted and ready", cs.RestartCount, cs.Ready)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(tmp, "artifacts", "run-1") // not there yet
	written, err := CollectArtifacts(ctx, cfg, opts, dir)
	if err != nil {
		t.Errorf("CollectArtifacts: %v", err)
	}
	files := listDir(t, dir)
	if got := relAll(t, dir, written); !slices.Equal(got, files) {
		t.Errorf("written %q, but the folder holds %q", got, files)
	}
	t.Logf("artifacts: %q", files)

	var pods map[string][]cluster.PodStatus
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "pods.json")), &pods); err != nil {
		t.Fatalf("pods.json: %v", err)
	}
	if len(pods["probe"]) != 1 || len(pods["probe"][0].Containers) != 1 || pods["probe"][0].Containers[0].RestartCount < 1 {
		t.Fatalf("pods.json: %+v, want the probe's pod with its restarted container", pods)
	}
	base := "pods/probe/" + pods["probe"][0].Name + "." + pods["probe"][0].Containers[0].Name
	want := []string{"events.txt", "h2.log", "kafka.log", "pods.json", base + ".log", base + ".previous.log", "status.json", "topics.json"}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("artifacts %q, want %q", files, want)
	}
	for _, f := range files {
		b := readArtifact(t, dir, f)
		if strings.HasSuffix(f, ".error.txt") {
			t.Errorf("%s: %s", f, b)
		}
		if len(strings.TrimSpace(b)) == 0 {
			t.Errorf("%s is empty", f)
		}
		if strings.Contains(b, secret) {
			t.Errorf("%s holds the Secret's value", f)
		}
	}

	for f, text := range map[string]string{
		base + ".log":          "h2probe listening",
		base + ".previous.log": "h2probe exiting on request",
		"events.txt":           "Pod/" + pods["probe"][0].Name,
	} {
		if b := readArtifact(t, dir, f); !strings.Contains(b, text) {
			t.Errorf("%s lacks %q:\n%s", f, text, b)
		}
	}
	if events := strings.Split(strings.TrimSpace(readArtifact(t, dir, "events.txt")), "\n"); len(events) < 2 {
		t.Errorf("events.txt has no event:\n%s", strings.Join(events, "\n"))
	}
	var status Report
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "status.json")), &status); err != nil || status.Project != name || len(status.External) != 2 {
		t.Errorf("status.json: %+v, %v", status, err)
	}
	var topics map[string][]kafka.PartitionOffset
	if err := json.Unmarshal([]byte(readArtifact(t, dir, "topics.json")), &topics); err != nil {
		t.Fatalf("topics.json: %v", err)
	}
	if ps := topics["artifacts"]; len(ps) == 0 || ps[0].Offset != 1 {
		t.Errorf("topics.json: artifacts has %+v, want partition 0 at end offset 1", ps)
	}

	// A second collection into the same folder replaces the files; with the
	// H2 container gone its part fails alone, as an error file, and the
	// h2.log of the first collection is gone.
	if err := h2.Remove(ctx, docker, cfg.Name, false); err != nil {
		t.Fatal(err)
	}
	_, err = CollectArtifacts(ctx, cfg, opts, dir)
	if err == nil || !strings.Contains(err.Error(), "h2.log") {
		t.Errorf("CollectArtifacts without the H2 container = %v, want the h2.log part's error", err)
	}
	if b := readArtifact(t, dir, "h2.error.txt"); !strings.Contains(b, "no H2 container") {
		t.Errorf("h2.error.txt = %q", b)
	}
	if errs := slices.DeleteFunc(listDir(t, dir), func(f string) bool { return !strings.HasSuffix(f, ".error.txt") }); !slices.Equal(errs, []string{"h2.error.txt"}) {
		t.Errorf("error files %q, want only h2.error.txt", errs)
	}
	if slices.Contains(listDir(t, dir), "h2.log") {
		t.Error("the first collection's h2.log is still there beside h2.error.txt")
	}
}
