package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTail(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, addr, []Topic{{Name: "transfers", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "transfers", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		produce(fmt.Sprintf("old-%d", i))
	}

	var mu sync.Mutex
	var got []string
	seen := make(chan struct{}, 16)
	tctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Tail(tctx, addr, "transfers", 2, func(r Record) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
			mu.Unlock()
			seen <- struct{}{}
		})
	}()
	wait := func(n int) {
		t.Helper()
		for {
			mu.Lock()
			have := len(got)
			mu.Unlock()
			if have >= n {
				return
			}
			select {
			case <-seen:
			case <-ctx.Done():
				t.Fatalf("tail read %v, want %d records", got, n)
			}
		}
	}
	// The last two records first, then what is written from now on.
	wait(2)
	produce("new")
	wait(3)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Tail after ctx ended: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"3:old-3", "4:old-4", "5:new"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tail read %v, want %v", got, want)
	}
	if err := Tail(ctx, "", "transfers", 0, func(Record) {}); err == nil {
		t.Error("Tail with no address must fail")
	}
}
