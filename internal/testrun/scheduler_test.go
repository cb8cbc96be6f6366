package testrun

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
)

// fakeRuns is a RunFunc whose runs block until released or cancelled.
type fakeRuns struct {
	mu         sync.Mutex
	started    []string                 // test names, in start order
	running    map[string]int           // test name -> runs in progress
	overlapped bool                     // two runs of one test at once
	release    map[string]chan struct{} // test name -> closed to let its current run pass
	startedCh  chan string
	ignoreCtx  bool // runs end only when released
}

func newFakeRuns() *fakeRuns {
	return &fakeRuns{running: map[string]int{}, release: map[string]chan struct{}{}, startedCh: make(chan string, 100)}
}

func (f *fakeRuns) releaseCh(name string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.release[name]
	if !ok {
		ch = make(chan struct{})
		f.release[name] = ch
	}
	return ch
}

// pass lets the current (and later) runs of the test pass.
func (f *fakeRuns) pass(name string) { close(f.releaseCh(name)) }

func (f *fakeRuns) run(ctx context.Context, t *config.Test) Result {
	f.mu.Lock()
	f.started = append(f.started, t.Name)
	f.running[t.Name]++
	if f.running[t.Name] > 1 {
		f.overlapped = true
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[t.Name]--
		f.mu.Unlock()
	}()
	f.startedCh <- t.Name
	rel := f.releaseCh(t.Name)
	if f.ignoreCtx {
		<-rel
		return Result{Name: t.Name, Status: Passed}
	}
	select {
	case <-rel:
		return Result{Name: t.Name, Status: Passed}
	case <-ctx.Done():
		return Result{Name: t.Name, Status: Cancelled, ExitCode: -1, Err: ctx.Err()}
	}
}

// reports collects what the Scheduler reports.
type reports struct {
	mu  sync.Mutex
	got []Result
	ch  chan Result
}

func newReports() *reports { return &reports{ch: make(chan Result, 100)} }

func (r *reports) report(res Result) {
	r.mu.Lock()
	r.got = append(r.got, res)
	r.mu.Unlock()
	r.ch <- res
}

func (r *reports) all() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10 s for %s", what)
		var zero T
		return zero
	}
}

func schedTests() []*config.Test {
	return []*config.Test{
		{Name: "a-only", Services: []string{"a"}},
		{Name: "b-only", Services: []string{"b"}},
		{Name: "both", Services: []string{"a", "b"}},
	}
}

func TestSchedulerStartsWhatDepends(t *testing.T) {
	f, rep := newFakeRuns(), newReports()
	s := NewScheduler(context.Background(), schedTests(), f.run, rep.report)
	s.Updated([]string{"c"})
	s.Updated(nil)
	s.Updated([]string{"b"})
	got := []string{waitFor(t, f.startedCh, "a start"), waitFor(t, f.startedCh, "a start")}
	slices.Sort(got)
	if !slices.Equal(got, []string{"b-only", "both"}) {
		t.Errorf("started %v, want b-only and both", got)
	}
	f.pass("b-only")
	f.pass("both")
	for range 2 {
		if r := waitFor(t, rep.ch, "a report"); r.Status != Passed {
			t.Errorf("report %+v", r)
		}
	}
	s.Close()
	if n := len(rep.all()); n != 2 {
		t.Errorf("%d reports, want 2: %+v", n, rep.all())
	}
}

// TestSchedulerRestarts: an update while a test runs cancels it and starts
// it again; the cancelled run is not reported, the runs never overlap.
func TestSchedulerRestarts(t *testing.T) {
	f, rep := newFakeRuns(), newReports()
	s := NewScheduler(context.Background(), schedTests(), f.run, rep.report)
	defer s.Close()
	s.Updated([]string{"a"})
	waitFor(t, f.startedCh, "first start")
	waitFor(t, f.startedCh, "first start")
	s.Updated([]string{"a"})
	s.Updated([]string{"a", "b"}) // the one queued by the update before never starts
	var restarted []string
	for range 3 {
		restarted = append(restarted, waitFor(t, f.startedCh, "restart"))
	}
	slices.Sort(restarted)
	if !slices.Equal(restarted, []string{"a-only", "b-only", "both"}) {
		t.Errorf("restarted %v", restarted)
	}
	for _, n := range []string{"a-only", "b-only", "both"} {
		f.pass(n)
	}
	var reported []string
	for range 3 {
		r := waitFor(t, rep.ch, "report")
		if r.Status != Passed {
			t.Errorf("report %+v, want passed (the cancelled runs are not reported)", r)
		}
		reported = append(reported, r.Name)
	}
	s.Close()
	slices.Sort(reported)
	if !slices.Equal(reported, []string{"a-only", "b-only", "both"}) || len(rep.all()) != 3 {
		t.Errorf("reported %v (%d), want each test once", reported, len(rep.all()))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.started) != 5 || f.overlapped {
		t.Errorf("started %v (overlapping: %v), want 5 runs, one at a time per test", f.started, f.overlapped)
	}
}

// TestSchedulerUpdatedNeverBlocks: even a run that ignores its cancel does
// not hold up the caller, and its replacement waits for it.
func TestSchedulerUpdatedNeverBlocks(t *testing.T) {
	f, rep := newFakeRuns(), newReports()
	f.ignoreCtx = true
	s := NewScheduler(context.Background(), []*config.Test{{Name: "x", Services: []string{"a"}}}, f.run, rep.report)
	s.Updated([]string{"a"})
	waitFor(t, f.startedCh, "start")
	returned := make(chan struct{})
	go func() {
		for range 10 {
			s.Updated([]string{"a"})
		}
		close(returned)
	}()
	waitFor(t, returned, "Updated to return")
	f.pass("x")
	waitFor(t, f.startedCh, "the restart")
	// The first run passed (it had its own result), then the restart.
	for range 2 {
		if r := waitFor(t, rep.ch, "report"); r.Status != Passed {
			t.Errorf("report %+v", r)
		}
	}
	s.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.started) != 2 || f.overlapped {
		t.Errorf("started %v (overlapping: %v), want the first run and one restart", f.started, f.overlapped)
	}
}

// TestSchedulerClose: Close cancels the running tests, reports them as
// cancelled before it returns, and later updates do nothing.
func TestSchedulerClose(t *testing.T) {
	f, rep := newFakeRuns(), newReports()
	s := NewScheduler(context.Background(), schedTests(), f.run, rep.report)
	s.Updated([]string{"b"})
	waitFor(t, f.startedCh, "start")
	waitFor(t, f.startedCh, "start")
	s.Close()
	got := rep.all()
	if len(got) != 2 || got[0].Status != Cancelled || got[1].Status != Cancelled {
		t.Errorf("reports %+v, want two cancelled", got)
	}
	s.Updated([]string{"a", "b"})
	s.Close() // twice is fine
	if len(f.startedCh) != 0 || len(rep.all()) != 2 {
		t.Errorf("something ran after Close: %d starts, %d reports", len(f.startedCh), len(rep.all()))
	}
}

// TestSchedulerContext: the end of the Scheduler's context stops its runs.
func TestSchedulerContext(t *testing.T) {
	f, rep := newFakeRuns(), newReports()
	ctx, cancel := context.WithCancel(context.Background())
	s := NewScheduler(ctx, schedTests(), f.run, rep.report)
	defer s.Close()
	s.Updated([]string{"a"})
	waitFor(t, f.startedCh, "start")
	waitFor(t, f.startedCh, "start")
	cancel()
	for range 2 {
		if r := waitFor(t, rep.ch, "report"); r.Status != Cancelled {
			t.Errorf("report %+v, want cancelled", r)
		}
	}
	s.Updated([]string{"a"})
	if len(f.startedCh) != 0 {
		t.Error("a run started after the context ended")
	}
}
