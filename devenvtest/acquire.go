package devenvtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/log"
)

// pollInterval is how often Start tries again while the environment
// another process holds is not current.
const pollInterval = 2 * time.Second

// steps are the devenv calls acquire makes, as functions so that the unit
// tests can give fakes. lockWait is Options.LockWait for that call.
type steps struct {
	up     func(ctx context.Context, lockWait time.Duration) (*devenv.Env, error)
	attach func(ctx context.Context, lockWait time.Duration) (*devenv.Env, error)
	down   func(ctx context.Context, lockWait time.Duration) error
	poll   time.Duration
}

// acquire returns the environment, ready for the test, holding the
// project's lock shared:
//
//   - Up without waiting for the lock: it reuses a current environment
//     (changing nothing), brings a stale one up to date or creates it; then
//     its exclusive lock becomes a shared one;
//   - when another process holds the lock (ErrBusy), Attach, which waits
//     for an exclusive holder up to what is left of ctx's time and checks
//     that the environment is current;
//   - when it is not (ErrNotCurrent), both again every s.poll until ctx
//     ends: the holder may be bringing it up to date, or may end.
//
// With reuse false, Down comes first (exclusive: it waits for the others).
func acquire(ctx context.Context, s steps, reuse bool, lg *log.Logger) (*devenv.Env, error) {
	if !reuse {
		if err := s.down(ctx, remaining(ctx)); err != nil {
			return nil, fmt.Errorf("removing the environment first (WithReuse(false)): %w", err)
		}
	}
	var busy, notCurrent error
	said := false
	for {
		env, err := s.up(ctx, -1)
		if err == nil {
			if err := env.Share(ctx); err != nil {
				env.Close()
				return nil, fmt.Errorf("sharing the environment: %w", err)
			}
			return env, nil
		}
		if !errors.Is(err, devenv.ErrBusy) {
			return nil, err
		}
		busy = err
		wait := remaining(ctx)
		if wait <= 0 {
			return nil, timedOut(ctx, busy, notCurrent)
		}
		env, err = s.attach(ctx, wait)
		if err == nil {
			lg.Infof("using the environment another devenv process holds")
			return env, nil
		}
		switch {
		case errors.Is(err, devenv.ErrBusy) || ctx.Err() != nil:
			return nil, timedOut(ctx, err, notCurrent)
		case !errors.Is(err, devenv.ErrNotCurrent):
			return nil, fmt.Errorf("attaching to the environment another devenv process holds: %w", err)
		}
		notCurrent = err
		if !said {
			lg.Infof("waiting up to %s for the environment to become current: %v (%v)", remaining(ctx).Round(time.Second), notCurrent, busy)
			said = true
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, timedOut(ctx, busy, notCurrent)
		case <-t.C:
		}
	}
}

// remaining is what is left of ctx's time, or an hour without a deadline.
func remaining(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Hour
	}
	return time.Until(dl)
}

// timedOut says who held the environment and what was not current when
// Start's time ran out.
func timedOut(ctx context.Context, busy, notCurrent error) error {
	err := fmt.Errorf("timed out (WithTimeout): %w", busy)
	if notCurrent != nil {
		err = fmt.Errorf("%w; and %w", err, notCurrent)
	}
	cause := ctx.Err()
	if cause == nil { // the deadline passed, the context has not noticed yet
		cause = context.DeadlineExceeded
	}
	return fmt.Errorf("%w (%w)", err, cause)
}
