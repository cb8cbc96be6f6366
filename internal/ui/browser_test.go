package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/internal/ui"
)

// chanKafka is a broker whose tail gives the records sent on recs.
type chanKafka struct{ recs chan ui.Record }

func (k chanKafka) Topics(context.Context) ([]ui.Topic, error) {
	return []ui.Topic{{Name: "transfers", EndOffsets: []int64{8}}}, nil
}

func (k chanKafka) Tail(ctx context.Context, _ string, _ int64, each func(ui.Record)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-k.recs:
			each(r)
		}
	}
}

// TestIntegrationBrowserPage drives the page in a real headless Chromium against a
// Hub fed by hand (no Docker): every part and service shows its state, an
// update and a record appear without a reload, and the page asks for
// nothing outside 127.0.0.1. TestIntegrationUIBrowser (internal/devenv)
// does the same against a running environment.
func TestIntegrationBrowserPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	b := testenv.NewBrowser(t)
	hub := ui.NewHub()
	ready := ui.Status{Project: "shop", Namespace: "shop", Ready: true, Kafka: true,
		Parts: []ui.Part{
			{Kind: "cluster", Name: "shop", Ready: true, Address: "context kind-shop"},
			{Kind: "kafka", Name: "devenv-shop-kafka", Ready: true, IP: "172.18.255.254", Host: "127.0.0.1:45439", Address: "kafka:9092"},
			{Kind: "h2", Name: "devenv-shop-h2", Ready: true, IP: "172.18.255.253", Host: "127.0.0.1:45440", Address: "h2:9092"},
		},
		Services: []ui.Service{{Name: "orders", Ready: true, ReadyPods: 1, Desired: 1, Image: "devenv.local/shop-orders:1", Secrets: []string{"db.password"}}},
	}
	hub.Status(ready)
	hub.SaveStarted(ui.HowUp, []string{"orders"})
	hub.Step("orders: image", time.Now(), 300*time.Millisecond, true, false)
	hub.Step("cluster shop", time.Now(), 3*time.Second, true, false)
	hub.Applied(ui.Update{Service: "orders", How: ui.HowUp, Image: "devenv.local/shop-orders:1", OK: true})
	hub.SaveEnded()
	hub.Log("orders", "orders listening on :8080")
	srv, err := ui.Listen(hub, ui.Options{Port: 17780})
	if err != nil {
		t.Fatal(err)
	}
	k := chanKafka{recs: make(chan ui.Record, 4)}
	srv.SetKafka(k)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	b.Open(t, srv.URL())
	for _, sel := range []string{
		`#overall[data-state="ready"]`,
		`tr[data-part="cluster"][data-state="ready"]`,
		`tr[data-part="kafka"][data-state="ready"]`,
		`tr[data-part="h2"][data-state="ready"]`,
		`tr[data-service="orders"][data-state="ready"][data-how="up"]`,
		`.save[data-trigger="up"][data-running="no"]`,
		`tr[data-topic="transfers"]`,
	} {
		b.WaitFor(t, sel, 10*time.Second)
	}
	// Each step's bar is as long as the step, on the save's time line.
	widths, _ := testenv.Eval[[]float64](b, `[...document.querySelectorAll('.save[data-trigger="up"] .bar')].map(e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width)`)
	if len(widths) != 2 || widths[0] > 0.2 || widths[1] < 0.8 {
		t.Errorf("the up's step bars span %v of their tracks, want about 0.1 and 1", widths)
	}
	if text, _ := testenv.Eval[string](b, `document.getElementById("log").textContent`); !strings.Contains(text, "orders listening") {
		t.Errorf("logs show %q", text)
	}

	// A save: its steps and the live update appear without a reload.
	hub.SaveStarted("save", []string{"orders"})
	hub.Step("orders: updating 1 running containers in place", time.Now(), 200*time.Millisecond, true, false)
	hub.Applied(ui.Update{Service: "orders", How: ui.HowLive, Image: "devenv.local/shop-orders:2", Duration: ui.Millis(900 * time.Millisecond), OK: true})
	hub.SaveEnded()
	b.WaitFor(t, `tr[data-service="orders"][data-how="live"]`, 10*time.Second)
	b.WaitFor(t, `.save[data-trigger="save"][data-running="no"]`, 10*time.Second)
	hub.TestResult(ui.Test{Name: "transfer", Status: "passed", Duration: ui.Millis(time.Second)})
	b.WaitFor(t, `tr[data-test="transfer"][data-status="passed"]`, 10*time.Second)
	hub.Log("orders", "<b>not markup</b>")
	b.WaitFor(t, `#log`, time.Second)

	// A record of the followed topic.
	k.recs <- ui.Record{Partition: 0, Offset: 8, Value: `{"amount":5}`}
	b.WaitFor(t, `#tail li[data-offset="8"]`, 10*time.Second)
	if text, _ := testenv.Eval[string](b, `document.querySelector('#tail li[data-offset="8"] .value').textContent`); text != `{"amount":5}` {
		t.Errorf("the record shows %q", text)
	}
	if n, _ := testenv.Eval[int](b, `document.querySelectorAll("#log b").length`); n != 0 {
		t.Error("a log line became markup")
	}
	b.Screenshot(t, "browser-page")
	if off := b.OffLoopback(); len(off) > 0 {
		t.Errorf("the page asked outside 127.0.0.1: %q", off)
	}
	if len(b.Requests()) < 4 {
		t.Errorf("requests seen: %q; the network events were not recorded", b.Requests())
	}
}
