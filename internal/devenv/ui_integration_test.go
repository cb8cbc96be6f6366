package devenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/internal/ui"
	"github.com/devenv-tool/devenv/kafka"
)

// TestIntegrationUIBrowser opens the browser view of a running environment
// (Kafka, an H2 server, one service) in Debian's headless Chromium: every
// part and the service are listed as ready, a saved change appears as a
// new save and a new update of the service, a record produced to a topic
// appears in its live tail, no secret value is on the page, and the page
// asks for nothing outside 127.0.0.1. The screenshot is left in
// $DEVENV_TEST_ARTIFACTS when that is set.
func TestIntegrationUIBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	b := testenv.NewBrowser(t) // skips without /usr/bin/chromium
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
	probe := testenv.GoService(t, ctx, "./testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-ui-")
	const secret = "s3cret-value-for-the-ui-test"
	t.Setenv("DEVENV_UI_IT_TOKEN", secret)
	file := filepath.Join(tmp, "devenv.yaml")
	if err := os.WriteFile(file, []byte(`name: `+name+`
kafka: {topics: [uitail]}
h2: {mode: server}
services:
  probe:
    context: ./probe
    port: 8080
    config: {H2_ADDRESS: "h2:9092"}
    secrets: {probe.token: {env: DEVENV_UI_IT_TOKEN}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	hub := ui.NewHub()
	srv, err := ui.Listen(hub, ui.Options{Port: freePort()})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() { stopServe(); <-served }()

	out := &testenv.Log{TB: t}
	opts := Options{Kubeconfig: filepath.Join(tmp, "kubeconfig"), Log: log.New(out, true), RolloutTimeout: 4 * time.Minute,
		PodLogs: &testenv.Log{}, Live: true, PrivilegedShim: true, Observer: hub}
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
	t.Cleanup(func() { env.Close() }) // before Down, which waits for the lock
	srv.SetKafka(env.KafkaView())
	wctx, stopWatch := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- env.Watch(wctx, []string{file}) }()
	defer func() {
		stopWatch()
		if err := <-watchErr; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()

	b.Open(t, srv.URL())
	for _, sel := range []string{
		`#overall[data-state="ready"]`,
		`tr[data-part="cluster"][data-state="ready"]`,
		`tr[data-part="kafka"][data-state="ready"]`,
		`tr[data-part="h2"][data-state="ready"]`,
		`tr[data-service="probe"][data-state="ready"][data-how="up"]`,
		`.save[data-trigger="up"][data-running="no"]`,
		`tr[data-topic="uitail"]`,
	} {
		b.WaitFor(t, sel, time.Minute)
	}
	b.WaitTrue(t, `document.getElementById("log").textContent.includes("h2probe listening")`, time.Minute)

	// A save: the binary changes (bytes after its end do not matter to
	// it), so the image does; the page shows the save and the update.
	if err := testenv.Eventually(ctx, 30*time.Second, 500*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "watching 1 services") {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatal("the watcher did not start")
	}
	f, err := os.OpenFile(filepath.Join(probe, "probe"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nui test save\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(t, `.save[data-trigger="save"][data-running="no"]`, 3*time.Minute)
	b.WaitTrue(t, `["live","swap","rollout"].includes(document.querySelector('tr[data-service="probe"]').dataset.how)`, time.Minute)
	b.WaitFor(t, `tr[data-service="probe"][data-state="ready"]`, time.Minute)

	// A record produced to the followed topic appears in the tail.
	if _, err := testenv.Eval[bool](b, `(document.querySelector('tr[data-topic="uitail"]').click(), true)`); err != nil {
		t.Fatal(err)
	}
	b.WaitFor(t, `#tail[data-topic="uitail"]`, 10*time.Second)
	time.Sleep(time.Second) // the tail's consumer starts at the end
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.HostAddress))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "uitail", Value: []byte(`{"amount":5,"from":"ui-test"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b.WaitTrue(t, `document.getElementById("tail").textContent.includes('"from":"ui-test"')`, 30*time.Second)

	b.Screenshot(t, "ui-browser")
	html, err := testenv.Eval[string](b, `document.documentElement.outerHTML`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, secret) {
		t.Error("the page shows a secret's value")
	}
	if !strings.Contains(html, "probe.token") {
		t.Error("the page does not name the secret probe.token")
	}
	if off := b.OffLoopback(); len(off) > 0 {
		t.Errorf("the page asked outside 127.0.0.1: %q", off)
	}
}
