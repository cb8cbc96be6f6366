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
}

// start announces a step and returns the function that ends it.
func (p *progress) start(format string, args ...any) func(err error, doneFormat string, doneArgs ...any) {
	what := fmt.Sprintf(format, args...)
	p.log.Infof("• %s ...", what)
	t0 := time.Now()
	return func(err error, doneFormat string, doneArgs ...any) {
		took := time.Since(t0)
		d := took.Round(100 * time.Millisecond)
		p.mu.Lock()
		defer p.mu.Unlock()
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
}
