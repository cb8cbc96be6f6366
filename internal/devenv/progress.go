package devenv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/devenv-tool/devenv/internal/log"
)

// progress prints one line when a step starts and a ✓/✗ line with its
// duration when it ends (a step ended by cancellation says "stopped"
// rather than ✗). It is safe for concurrent steps.
type progress struct {
	mu  sync.Mutex
	log *log.Logger
	// obs, when set, gets every step that ended (Observer.Step).
	obs Observer
	// now is the clock (nil: time.Now); tests set a fake one.
	now func() time.Time
	// steps, while recording (a save's batch runs), collects every step
	// that ended: what the save's summary is made of.
	recording bool
	steps     []stepTime
}

// stepKind sorts a step into a save's summary (saveSummary); "" is none,
// its time counts as devenv's "other".
type stepKind string

const (
	stepPrebuild stepKind = "prebuild"
	stepImage    stepKind = "image"
	stepLoad     stepKind = "load"
	stepLive     stepKind = "write+restart+ready"
	stepSwap     stepKind = "swap"
	stepApply    stepKind = "apply"
	stepRollout  stepKind = "rollout"
)

// stepTime is one ended step, as a save's summary counts it.
type stepTime struct {
	kind  stepKind
	start time.Time
	d     time.Duration
}

// clock returns the current time.
func (p *progress) clock() time.Time {
	if p.now == nil {
		return time.Now()
	}
	return p.now()
}

// record starts collecting the steps that end, afresh.
func (p *progress) record() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording, p.steps = true, nil
}

// recorded stops collecting and returns the steps collected since record.
func (p *progress) recorded() []stepTime {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.steps
	p.recording, p.steps = false, nil
	return s
}

// start announces a step and returns the function that ends it.
func (p *progress) start(format string, args ...any) func(err error, doneFormat string, doneArgs ...any) {
	return p.begin("", format, args...).end
}

// runningStep is a step that began; end ends it.
type runningStep struct {
	p *progress
	// kind is what the step counts as in a save's summary; it may change
	// before end (a prebuild that was skipped is devenv's own time).
	kind stepKind
	what string
	t0   time.Time
}

// begin announces a step of kind and returns it; its end method ends it.
func (p *progress) begin(kind stepKind, format string, args ...any) *runningStep {
	what := fmt.Sprintf(format, args...)
	p.log.Infof("• %s ...", what)
	return &runningStep{p: p, kind: kind, what: what, t0: p.clock()}
}

// end prints the step's ✓/✗ line with its duration; doneFormat, when
// given, is the ✓ line's text instead of the step's name.
func (s *runningStep) end(err error, doneFormat string, doneArgs ...any) {
	p, what, t0 := s.p, s.what, s.t0
	took := p.clock().Sub(t0)
	d := took.Round(100 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recording {
		p.steps = append(p.steps, stepTime{kind: s.kind, start: t0, d: took})
	}
	if p.obs != nil {
		p.obs.Step(what, t0, took, err == nil, errors.Is(err, context.Canceled))
	}
	if errors.Is(err, context.Canceled) {
		// Stopped (Ctrl-C), not failed.
		p.log.Infof("• %s: stopped (%s)", what, d)
		return
	}
	if err != nil {
		p.log.Infof("✗ %s (%s)", what, d)
		return
	}
	msg := what
	if doneFormat != "" {
		msg = fmt.Sprintf(doneFormat, doneArgs...)
	}
	p.log.Infof("✓ %s (%s)", msg, d)
}
