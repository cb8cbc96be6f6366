package watch

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual Clock. Every After call is announced on armed, so a
// test knows when the coalescer is waiting and for how long.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	armed   chan time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1000, 0), armed: make(chan time.Duration, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.armed <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func ch(at time.Time, svc string, paths ...string) change {
	return change{at: at, service: map[string][]string{svc: paths}}
}

func TestCoalescerStateMachine(t *testing.T) {
	t0 := time.Unix(0, 0)
	ms := time.Millisecond
	c := &coalescer{quiet: 200 * ms, max: time.Second}
	if c.active() {
		t.Fatal("new coalescer is active")
	}
	c.add(ch(t0, "a", "x"))
	if got := c.wait(t0); got != 200*ms {
		t.Errorf("quiet: wait = %v, want 200ms", got)
	}
	// A burst: every 150 ms a new change pushes the quiet deadline out...
	at := t0
	for i := 0; i < 5; i++ { // 150 ms .. 750 ms
		at = at.Add(150 * ms)
		c.add(ch(at, "a", "y"))
		if got := c.wait(at); got != 200*ms {
			t.Fatalf("burst at %v: wait = %v, want 200ms", at.Sub(t0), got)
		}
	}
	// ...until the cap: at 900 ms the batch is due 100 ms later, not 200.
	at = t0.Add(1050 * ms)
	c.add(ch(t0.Add(900*ms), "a", "z"))
	if got := c.wait(t0.Add(900 * ms)); got != 100*ms {
		t.Errorf("cap: wait = %v, want 100ms", got)
	}
	if got := c.wait(at); got != 0 {
		t.Errorf("past the cap: wait = %v, want 0", got)
	}
	p := c.take()
	b := p.batch()
	if want := map[string][]string{"a": {"x", "y", "z"}}; !reflect.DeepEqual(b.Services, want) {
		t.Errorf("batch = %v, want %v (deduplicated, sorted)", b.Services, want)
	}
	if !b.First.Equal(t0) {
		t.Errorf("batch.First = %v, want the first change's time %v", b.First, t0)
	}
	// A batch that waited for the consumer takes in the next one: it
	// keeps the earlier first change.
	c.add(ch(t0.Add(2*time.Second), "b", "w"))
	p.merge(c.take())
	if got := p.batch().First; !got.Equal(t0) {
		t.Errorf("merged batch.First = %v, want %v", got, t0)
	}
	if c.active() {
		t.Error("coalescer still active after take")
	}
}

func recvBatch(t *testing.T, out <-chan Batch) Batch {
	t.Helper()
	select {
	case b := <-out:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch within 5s")
	}
	return Batch{}
}

func expectArmed(t *testing.T, c *fakeClock, want time.Duration) {
	t.Helper()
	select {
	case d := <-c.armed:
		if d != want {
			t.Fatalf("timer armed for %v, want %v", d, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("timer not armed within 5s (want %v)", want)
	}
}

// runCoalesce runs the coalescing loop on a fake clock until the test ends.
func runCoalesce(t *testing.T, quiet, short, max time.Duration) (*fakeClock, chan<- change, <-chan Batch) {
	clock := newFakeClock()
	in := make(chan change)
	out := make(chan Batch)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { coalesce(done, clock, quiet, short, max, in, out) })
	t.Cleanup(func() { close(done); wg.Wait() })
	return clock, in, out
}

func TestCoalesceLoop(t *testing.T) {
	ms := time.Millisecond
	clock, in, out := runCoalesce(t, 200*ms, 0, time.Second)

	// Quiet period: one change, 200 ms later one batch.
	saved := clock.Now()
	in <- ch(saved, "a", "one")
	expectArmed(t, clock, 200*ms)
	clock.Advance(200 * ms)
	if b := recvBatch(t, out); !reflect.DeepEqual(b.Services, map[string][]string{"a": {"one"}}) || !b.First.Equal(saved) {
		t.Fatalf("batch = %v first %v, want the change at %v", b.Services, b.First, saved)
	}

	// Burst: a second change 150 ms in extends the wait; nothing at 200 ms.
	in <- ch(clock.Now(), "a", "two")
	expectArmed(t, clock, 200*ms)
	clock.Advance(150 * ms)
	in <- ch(clock.Now(), "b", "three")
	clock.Advance(50 * ms)        // the first timer fires, but the batch is not due
	expectArmed(t, clock, 150*ms) // re-armed for the rest of the quiet period
	clock.Advance(150 * ms)
	b := recvBatch(t, out)
	if want := map[string][]string{"a": {"two"}, "b": {"three"}}; !reflect.DeepEqual(b.Services, want) {
		t.Fatalf("burst batch = %v, want %v", b.Services, want)
	}

	// Cap: changes every 150 ms never leave a quiet gap, yet the batch comes at 1 s.
	start := clock.Now()
	for i := 0; i <= 6; i++ {
		in <- ch(start.Add(time.Duration(i)*150*ms), "a", fmt.Sprintf("c%d", i))
		if i == 0 {
			expectArmed(t, clock, 200*ms)
		}
	}
	clock.Advance(950 * ms)      // the first timer fires at 950 ms: 50 ms to the cap
	expectArmed(t, clock, 50*ms) // (the quiet deadline would be 1100 ms)
	clock.Advance(50 * ms)
	b = recvBatch(t, out)
	if len(b.Services["a"]) != 7 {
		t.Fatalf("capped batch = %v, want 7 paths", b.Services)
	}
	select {
	case d := <-clock.armed:
		t.Fatalf("unexpected timer armed for %v after the batch", d)
	default:
	}
}

// TestCoalescerShortQuiet: a batch of a few paths (an editor's save) is
// due after the short quiet period; one that grows past shortPaths, or
// holds a config change or an overflow, after the long one.
func TestCoalescerShortQuiet(t *testing.T) {
	t0 := time.Unix(0, 0)
	ms := time.Millisecond
	c := &coalescer{quiet: 200 * ms, short: 50 * ms, max: time.Second}
	c.add(ch(t0, "a", "main.go"))
	if got := c.wait(t0); got != 50*ms {
		t.Errorf("one path: wait = %v, want 50ms", got)
	}
	// vim's save: a probe file, a backup, the file again and again.
	at := t0
	for _, p := range []string{"4913", "main.go~", "main.go", "main.go", "main.go"} {
		at = at.Add(2 * ms)
		c.add(ch(at, "a", p))
	}
	if got := c.wait(at); got != 50*ms {
		t.Errorf("an editor's save (3 paths, 6 events): wait = %v, want 50ms", got)
	}
	c.add(ch(at, "b", "x.go")) // 4 paths, two services
	if got := c.wait(at); got != 50*ms {
		t.Errorf("4 paths: wait = %v, want 50ms", got)
	}
	c.add(ch(at, "b", "y.go")) // 5: a checkout, a generator
	if got := c.wait(at); got != 200*ms {
		t.Errorf("5 paths: wait = %v, want 200ms", got)
	}
	c.take()
	c.add(change{at: t0, config: true})
	if got := c.wait(t0); got != 200*ms {
		t.Errorf("a config change: wait = %v, want 200ms", got)
	}
	c.take()
	c.add(change{at: t0, overflow: true})
	if got := c.wait(t0); got != 200*ms {
		t.Errorf("an overflow: wait = %v, want 200ms", got)
	}
	c.take()
	c.short = 0
	c.add(ch(t0, "a", "main.go"))
	if got := c.wait(t0); got != 200*ms {
		t.Errorf("no short quiet: wait = %v, want 200ms", got)
	}
}

// TestCoalesceLoopShortQuiet: the loop sends an editor's save after the
// short quiet period, and re-arms for the long one when a burst grows.
func TestCoalesceLoopShortQuiet(t *testing.T) {
	ms := time.Millisecond
	clock, in, out := runCoalesce(t, 200*ms, 50*ms, time.Second)

	in <- ch(clock.Now(), "a", "main.go")
	expectArmed(t, clock, 50*ms)
	clock.Advance(50 * ms)
	if b := recvBatch(t, out); !reflect.DeepEqual(b.Services, map[string][]string{"a": {"main.go"}}) {
		t.Fatalf("batch = %v, want main.go", b.Services)
	}

	// A checkout: six files within 10 ms; at 50 ms the batch is not due.
	for i := range 6 {
		in <- ch(clock.Now(), "a", fmt.Sprintf("f%d.go", i))
		if i == 0 {
			expectArmed(t, clock, 50*ms)
		}
	}
	clock.Advance(50 * ms)
	expectArmed(t, clock, 150*ms)
	clock.Advance(150 * ms)
	if b := recvBatch(t, out); len(b.Services["a"]) != 6 {
		t.Fatalf("checkout batch = %v, want 6 paths", b.Services)
	}
}
