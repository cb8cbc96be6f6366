package devenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/watch"
)

// stepClock is a manual clock for the loop's progress: the fakes below
// advance it by what each call "takes".
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// timedBuilder runs a prebuild and an image step through the loop's
// progress, as imageBuilder does, each taking the time set.
type timedBuilder struct {
	*fakeBuilder
	prog             *progress
	clock            *stepClock
	prebuild, image  time.Duration
	prebuildFailsErr error
}

func (b *timedBuilder) Build(ctx context.Context, s *config.Service, o buildOptions) (built, error) {
	st := b.prog.begin(stepPrebuild, "%s: prebuild", s.Name)
	b.clock.Advance(b.prebuild)
	st.end(b.prebuildFailsErr, "")
	if b.prebuildFailsErr != nil {
		return built{}, b.prebuildFailsErr
	}
	done := b.prog.begin(stepImage, "%s: image", s.Name).end
	b.clock.Advance(b.image)
	res, err := b.fakeBuilder.Build(ctx, s, o)
	done(err, "")
	return res, err
}

// timedCluster is fakeCluster with each call taking the time set in took
// (by the call's name).
type timedCluster struct {
	*fakeCluster
	clock *stepClock
	took  map[string]time.Duration
}

func (c *timedCluster) LiveTargets(ctx context.Context, namespace, service string) ([]cluster.LiveTarget, error) {
	c.clock.Advance(c.took["LiveTargets"])
	return c.fakeCluster.LiveTargets(ctx, namespace, service)
}

func (c *timedCluster) LiveUpdate(ctx context.Context, t cluster.LiveTarget, files []byte, removed []string, port int, timeout time.Duration) error {
	c.clock.Advance(c.took["LiveUpdate"])
	return c.fakeCluster.LiveUpdate(ctx, t, files, removed, port, timeout)
}

func (c *timedCluster) LoadParts(ctx context.Context, ref string, a *build.Assembled) error {
	c.clock.Advance(c.took["LoadParts"])
	return c.fakeCluster.LoadParts(ctx, ref, a)
}

func (c *timedCluster) SwapImage(ctx context.Context, namespace, service, ref string, timeout time.Duration) error {
	c.clock.Advance(c.took["SwapImage"])
	return c.fakeCluster.SwapImage(ctx, namespace, service, ref, timeout)
}

func TestLoopSaveSummary(t *testing.T) {
	ms := time.Millisecond
	took := map[string]time.Duration{"LiveTargets": 30 * ms, "LiveUpdate": 250 * ms, "LoadParts": 100 * ms, "SwapImage": 400 * ms}
	for _, tc := range []struct {
		name  string
		setup func(h *harness, b *timedBuilder)
		// line is the summary line; "" for none.
		line            string
		total, prebuild time.Duration
	}{
		{"live update", nil,
			"save → serving 1.40 s: quiet 0.20 s · prebuild 0.80 s (yours) · image 0.12 s · write+restart+ready 0.25 s · other 0.03 s — devenv's own 0.60 s",
			1400 * ms, 800 * ms},
		{"swap", func(h *harness, _ *timedBuilder) {
			h.c.targetsErr = fmt.Errorf("%w: 0 pods of account run, 1 wanted", cluster.ErrNoLive)
		},
			"save → serving 1.65 s: quiet 0.20 s · prebuild 0.80 s (yours) · image 0.12 s · load 0.10 s · swap 0.40 s · other 0.03 s — devenv's own 0.85 s",
			1650 * ms, 800 * ms},
		{"failed build: no summary", func(_ *harness, b *timedBuilder) {
			b.prebuildFailsErr = errors.New("compile error")
		}, "", 0, 0},
		{"failed live update: no summary", func(h *harness, _ *timedBuilder) {
			h.c.live = func(n int) error {
				if n == 0 {
					return errors.New("exited with code 3")
				}
				return nil
			}
		}, "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			clock := &stepClock{now: time.Unix(1000, 0)}
			h.l.prog.now = clock.Now
			tb := &timedBuilder{fakeBuilder: h.b, prog: h.l.prog, clock: clock, prebuild: 800 * ms, image: 120 * ms}
			tcl := &timedCluster{fakeCluster: h.c, clock: clock, took: took}
			h.l.builder = tb
			h.l.live, h.l.swapper, h.l.loader = tcl, tcl, tcl
			if tc.setup != nil {
				tc.setup(h, tb)
			}
			var got []SaveSummary
			h.l.opts.Saved = func(s SaveSummary) { got = append(got, s) }

			h.b.next["account"] = built{Ref: refV2, Assembled: image(t, "sha256:base", "A=1", map[string]string{"app": "v2"})}
			first := clock.Now()
			clock.Advance(200 * ms) // the quiet period
			h.l.handle(context.Background(), watch.Batch{Services: map[string][]string{"account": {"app"}}, First: first}, []string{h.files})

			if tc.line == "" {
				h.wantLines(t, []string{"✗"}, "→ serving")
				if len(got) != 0 {
					t.Errorf("a failed save was summarized: %v", got)
				}
				return
			}
			h.wantLines(t, []string{tc.line}, "✗")
			if len(got) != 1 {
				t.Fatalf("Options.Saved got %d summaries, want 1", len(got))
			}
			s := got[0]
			if s.Total != tc.total || s.Prebuild != tc.prebuild || s.Quiet != 200*ms {
				t.Errorf("total %v, prebuild %v, quiet %v; want %v, %v, 200ms", s.Total, s.Prebuild, s.Quiet, tc.total, tc.prebuild)
			}
			if s.Own() != s.Total-s.Prebuild {
				t.Errorf("devenv's own %v, want total - prebuild = %v", s.Own(), s.Total-s.Prebuild)
			}
			sum := s.Quiet + s.Prebuild + s.Other
			for _, st := range s.Steps {
				sum += st.Duration
			}
			if sum != s.Total {
				t.Errorf("the parts add up to %v, the total is %v", sum, s.Total)
			}
			// The summary comes after the service's result line.
			out := h.out.String()
			if strings.Index(out, "→ serving") < strings.LastIndex(out, "account ✓") {
				t.Errorf("the summary comes before the service's result line:\n%s", out)
			}
		})
	}
}

func TestSummarizeCountsParallelStepsOnce(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []stepTime{
		{stepImage, at(0), 100 * ms},
		{"", at(100 * ms), 50 * ms}, // devenv's own, unnamed
		{stepApply, at(150 * ms), 50 * ms},
		// two rollouts waited for at once: 200-500 and 300-600 ms
		{stepRollout, at(200 * ms), 300 * ms},
		{stepRollout, at(300 * ms), 300 * ms},
	}
	s := summarize("config", []string{"account", "transfermoney"}, time.Time{}, t0, at(650*ms), steps)
	want := "config → serving 0.65 s: quiet 0.00 s · image 0.10 s · apply 0.05 s · rollout 0.40 s · other 0.10 s — devenv's own 0.65 s"
	if got := s.String(); got != want {
		t.Errorf("summary\n  %s\nwant\n  %s", got, want)
	}
}
