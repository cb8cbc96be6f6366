package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/kafka"
)

// TestIntegrationAttach: an environment Up brought up and shared is
// attached to by a second holder (a test binary) without changes; the
// services are reachable from the host through ForwardService; a changed
// configuration is "not current"; an up waits while a test uses it.
func TestIntegrationAttach(t *testing.T) {
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
	tmp := t.TempDir()
	testenv.GoService(t, ctx, "./testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-att-")
	project := func(file, extra string) *config.Config {
		t.Helper()
		if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
kafka: {topics: [attach]}
h2: {mode: server}
services:
  probe:
    context: ./probe
    port: 8080
    config: {H2_ADDRESS: "h2:9092"%s}
`, name, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := project(filepath.Join(tmp, "devenv.yaml"), "")
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
	t.Cleanup(func() { env.Close() })

	noWait := opts
	noWait.LockWait = -1
	// While Up holds the lock exclusively nobody attaches.
	if a, err := Attach(ctx, cfg, noWait); !errors.Is(err, ErrBusy) {
		if a != nil {
			a.Close()
		}
		t.Fatalf("Attach while up holds the lock: %v, want ErrBusy", err)
	}
	if err := env.Share(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	a, err := Attach(ctx, cfg, noWait)
	if err != nil {
		t.Fatalf("Attach to a current environment: %v", err)
	}
	t.Logf("attach took %s", time.Since(t0))
	if a.Kafka == nil || a.Kafka.HostAddress != env.Kafka.HostAddress || a.Images["probe"] != env.Images["probe"] {
		t.Errorf("attached to %+v, images %v; up has %+v, %v", a.Kafka, a.Images, env.Kafka, env.Images)
	}
	if u, err := a.H2HostURL(); err != nil || !strings.HasPrefix(u, "jdbc:h2:tcp://127.0.0.1:") {
		t.Errorf("H2HostURL = %q, %v", u, err)
	}
	// The service from the host, through a forward that follows its pods.
	f, err := a.ForwardService(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Eventually(ctx, 30*time.Second, 200*time.Millisecond, func() error {
		resp, err := http.Get("http://" + f.Addr() + "/h2")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "ok" {
			return fmt.Errorf("GET /h2: %s %s", resp.Status, b)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := a.ForwardService(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "probe") {
		t.Errorf("forwarding an unknown service: %v, want an error naming the services", err)
	}

	// An up (exclusive) does not run while a test uses the environment.
	if e2, err := Up(ctx, cfg, noWait); !errors.Is(err, ErrBusy) {
		if e2 != nil {
			e2.Close()
		}
		t.Fatalf("up while a test holds the lock shared: %v, want ErrBusy", err)
	}
	a.Close()

	// Another configuration value: the environment is not current for it.
	cfg2 := project(filepath.Join(tmp, "changed.yaml"), `, GREETING: hello`)
	if a2, err := Attach(ctx, cfg2, noWait); !errors.Is(err, ErrNotCurrent) || !strings.Contains(err.Error(), "configuration") {
		if a2 != nil {
			a2.Close()
		}
		t.Fatalf("Attach with a changed configuration: %v, want ErrNotCurrent naming the configuration", err)
	}
}
