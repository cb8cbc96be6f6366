package testrun

import (
	"context"
	"slices"
	"sync"

	"github.com/devenv-tool/devenv/internal/config"
)

// RunFunc runs one test until it ends or ctx is done; devenv up's is Run
// with the environment's Vars and an output of its choosing.
type RunFunc func(ctx context.Context, t *config.Test) Result

// Scheduler runs the declared tests after updates while devenv up watches.
// Updated starts every test that depends on an updated service; a test that
// is still running then is cancelled and started again once it has ended, so
// that two runs of one test never overlap.
//
// Reports: every run that ends is reported once, through the report func,
// one call at a time, except a run cancelled because its test was started
// again: that one is not reported (the run that replaces it is). A run that
// had already ended with its own result when the update came is reported
// as usual. Runs stopped by Close, or by the end of the Scheduler's context,
// are reported (as Cancelled) before Close returns.
type Scheduler struct {
	ctx    context.Context
	cancel context.CancelFunc
	tests  []*config.Test
	run    RunFunc
	report func(Result)

	mu       sync.Mutex
	closed   bool
	current  map[string]*schedRun // test name -> its latest run
	wg       sync.WaitGroup
	reportMu sync.Mutex
}

// schedRun is one run of a test, started or waiting for the one before it.
type schedRun struct {
	cancel     context.CancelFunc
	done       chan struct{} // closed when the run has ended and been reported
	superseded bool          // a later run replaces this one; guarded by Scheduler.mu
}

// NewScheduler returns a Scheduler for tests. run runs one test; report
// receives each result (see Scheduler). Ending ctx stops every run, like
// Close.
func NewScheduler(ctx context.Context, tests []*config.Test, run RunFunc, report func(Result)) *Scheduler {
	ctx, cancel := context.WithCancel(ctx)
	return &Scheduler{ctx: ctx, cancel: cancel, tests: tests, run: run, report: report, current: map[string]*schedRun{}}
}

// Updated starts every test that depends on one of services, cancelling
// and restarting the ones still running. It returns at once. After Close, or
// once the Scheduler's context is done, it does nothing.
func (s *Scheduler) Updated(services []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ctx.Err() != nil {
		return
	}
	for _, t := range s.tests {
		if !dependsOn(t, services) {
			continue
		}
		prev := s.current[t.Name]
		if prev != nil {
			prev.superseded = true
			prev.cancel()
		}
		ctx, cancel := context.WithCancel(s.ctx)
		r := &schedRun{cancel: cancel, done: make(chan struct{})}
		s.current[t.Name] = r
		s.wg.Add(1)
		go s.start(ctx, t, r, prev)
	}
}

// start waits for the test's previous run to end, then runs it, unless it
// was superseded in the meantime.
func (s *Scheduler) start(ctx context.Context, t *config.Test, r, prev *schedRun) {
	defer s.wg.Done()
	defer close(r.done)
	defer r.cancel()
	if prev != nil {
		<-prev.done
	}
	s.mu.Lock()
	skip := r.superseded
	s.mu.Unlock()
	if skip {
		return // never started: a later update replaced it
	}
	res := s.run(ctx, t)

	s.mu.Lock()
	superseded := r.superseded
	if s.current[t.Name] == r {
		delete(s.current, t.Name)
	}
	s.mu.Unlock()
	if superseded && res.Status == Cancelled {
		return
	}
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.report(res)
}

// Close cancels every run, waits until they have ended and been reported,
// and makes later Updated calls do nothing.
func (s *Scheduler) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// dependsOn reports whether t runs after an update of one of services.
func dependsOn(t *config.Test, services []string) bool {
	for _, s := range services {
		if slices.Contains(t.Services, s) {
			return true
		}
	}
	return false
}
