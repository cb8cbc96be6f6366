package devenv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// TestIntegrationH2Repoint runs a project with an H2 server and a pod that
// connects to it through the h2 Service; while Watch runs, the H2
// container is removed and recreated with another address behind devenv's
// back, and the pod must reach it again through the Service: the loop
// re-points the endpoints as it does for Kafka.
func TestIntegrationH2Repoint(t *testing.T) {
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

	// The probe: a static binary in a FROM-scratch image, which devenv
	// assembles itself (no pull, no engine build).
	tmp := t.TempDir()
	testenv.GoService(t, ctx, "./testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-h2-")
	file := filepath.Join(tmp, "devenv.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
h2: {mode: server}
services:
  probe:
    context: ./probe
    port: 8080
    config: {h2.address: "h2:9092"}
`, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.Log{TB: t}
	opts := Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), Log: log.New(out, true), RolloutTimeout: 4 * time.Minute, PrivilegedShim: true}
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
	defer env.Close()
	if env.H2 == nil {
		t.Fatal("up started no H2 server")
	}
	c, ns := env.Cluster, cfg.Namespace
	reaches := func() error {
		b, err := testenv.Proxy(ctx, c, ns, "GET", "probe:8080", "/h2", nil)
		if err != nil {
			return fmt.Errorf("GET /h2: %v: %s", err, b)
		}
		return nil
	}
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, reaches); err != nil {
		t.Fatalf("the pod does not reach H2 through its Service: %v", err)
	}

	wctx, stop := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- env.Watch(wctx, []string{file}) }()
	if err := testenv.Eventually(ctx, 30*time.Second, 200*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "watching 1 services") {
			return errors.New("watcher not started")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// H2 is removed and recreated, as it was but for its address, with the
	// Docker API behind devenv's back.
	old := env.H2.IP
	ins, err := docker.ContainerInspect(ctx, env.H2.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := docker.ContainerRemove(ctx, env.H2.ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	es := &network.EndpointSettings{Aliases: []string{"h2"}}
	if env.network.FixedIPs {
		taken, err := cluster.TakenIPs(ctx, docker, env.network)
		if err != nil {
			t.Fatal(err)
		}
		oldIP, _ := netip.ParseAddr(old)
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: cluster.PickIP(env.network, append(taken, oldIP), netip.Addr{})}
	}
	created, err := docker.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: strings.TrimPrefix(ins.Container.Name, "/"), Config: ins.Container.Config, HostConfig: ins.Container.HostConfig,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{env.network.Name: es}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := docker.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	now, err := docker.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved := ""
	if st := now.Container.NetworkSettings; st != nil && st.Networks[env.network.Name] != nil {
		moved = st.Networks[env.network.Name].IPAddress.String()
	}
	if moved == "" || moved == old {
		t.Fatalf("the recreated H2 server has address %q (before: %s); the test needs another", moved, old)
	}

	// Within a bound: the loop checks every 2 s, H2 starts in a few.
	t0 := time.Now()
	if err := testenv.Eventually(ctx, time.Minute, 500*time.Millisecond, reaches); err != nil {
		t.Fatalf("the pod does not reach the recreated H2 server through its Service: %v (endpoints %v)",
			err, serviceEndpoints(ctx, c, ns, cfg.H2.Service))
	}
	t.Logf("the pod reached the recreated H2 server after %s", time.Since(t0).Round(100*time.Millisecond))
	if got := serviceEndpoints(ctx, c, ns, cfg.H2.Service); len(got) != 1 || !strings.HasPrefix(got[0], moved+":") {
		t.Errorf("h2 endpoints %v, want [%s:%d]", got, moved, cfg.H2.Port)
	}
	if want := fmt.Sprintf("H2's address changed from %s to %s: re-pointing the endpoints", old, moved); !strings.Contains(out.String(), want) {
		t.Errorf("the output lacks %q", want)
	}

	stop()
	if err := <-watchErr; err != nil {
		t.Errorf("Watch returned %v after Ctrl-C, want nil", err)
	}
}
