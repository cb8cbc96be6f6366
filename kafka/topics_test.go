package kafka

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/internal/fakebroker"
)

// startBroker runs devenv's fake broker in-process on a loopback port.
func startBroker(t *testing.T) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- fakebroker.Run(ctx, fakebroker.Config{Listen: addr, Advertised: addr, Log: io.Discard, OnReady: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

func TestEnsureTopics(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := []Topic{
		{Name: "orders", Partitions: 3, Config: map[string]string{"retention.ms": "3600000"}},
		{Name: "audit"},
	}
	for range 2 { // idempotent
		if err := EnsureTopics(ctx, addr, topics); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	count := func(name string) int { // a fresh client: kgo caches metadata for a while
		c, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		td, err := kadm.NewClient(c).ListTopics(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return len(td[name].Partitions)
	}
	if count("orders") != 3 || count("audit") != 1 {
		t.Fatalf("partitions: orders %d, audit %d", count("orders"), count("audit"))
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("orders", nil); err != nil || !hasConfig(v, "retention.ms", "3600000") {
		t.Errorf("orders configs = %+v, %v", v, err)
	}

	if err := EnsureTopics(ctx, addr, []Topic{{Name: "orders", Partitions: 6}}); err != nil {
		t.Fatal(err)
	}
	if n := count("orders"); n != 6 {
		t.Errorf("orders has %d partitions after raising to 6", n)
	}
	err = EnsureTopics(ctx, addr, []Topic{{Name: "orders", Partitions: 2}})
	if err == nil || !strings.Contains(err.Error(), `topic "orders" has 6 partitions`) {
		t.Errorf("lowering: err = %v", err)
	}
}

func hasConfig(rc kadm.ResourceConfig, key, value string) bool {
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

func TestTopics(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, addr, []Topic{{Name: "transfers"}, {Name: "audit"}}); err != nil {
		t.Fatal(err)
	}
	got, err := Topics(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "transfers") || !slices.Contains(got, "audit") {
		t.Errorf("Topics = %v, want transfers and audit", got)
	}
	if _, err := Topics(ctx, ""); err == nil {
		t.Error("Topics with no address must fail")
	}
}
