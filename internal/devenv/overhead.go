package devenv

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SaveSummary is what one handled save (a batch of changes) cost, from
// the first change the watcher saw to the end of the batch, split by
// step. The loop prints it as one line after the services' result lines
// when every service the batch changed serves its new version; a batch
// with a failure, or stopped, has none.
type SaveSummary struct {
	// Trigger is "save" (sources changed) or "config" (a config file).
	Trigger string
	// Services are the services the batch was about, sorted.
	Services []string
	// Total runs from the first change the watcher saw (watch.Batch.First)
	// to the end of the batch.
	Total time.Duration
	// Quiet runs from the first change to the start of the work: the
	// watcher's quiet period, and any wait for the batch before it.
	Quiet time.Duration
	// Prebuild is the services' prebuild commands: the user's own time.
	Prebuild time.Duration
	// Steps are devenv's steps (image, load, write+restart+ready, swap,
	// apply, rollout), each kind once in the order it first ran, with the
	// wall time its steps took (steps that ran at once counted once).
	Steps []StepCost
	// Other is the rest: devenv's work between its steps (finding the
	// running containers, comparing files, checking a skipped prebuild).
	Other time.Duration
}

// StepCost is one kind of step's wall time in a save.
type StepCost struct {
	Name     string
	Duration time.Duration
}

// Own is devenv's own overhead: everything but the user's prebuild (the
// quiet period is devenv's).
func (s SaveSummary) Own() time.Duration { return s.Total - s.Prebuild }

// String is the summary's line, e.g. "save → serving 1.45 s: quiet 0.20 s ·
// prebuild 0.80 s (yours) · image 0.12 s · write+restart+ready 0.25 s ·
// other 0.08 s — devenv's own 0.65 s".
func (s SaveSummary) String() string {
	parts := []string{"quiet " + secs(s.Quiet)}
	if s.Prebuild > 0 {
		parts = append(parts, "prebuild "+secs(s.Prebuild)+" (yours)")
	}
	for _, st := range s.Steps {
		parts = append(parts, st.Name+" "+secs(st.Duration))
	}
	if s.Other >= 5*time.Millisecond {
		parts = append(parts, "other "+secs(s.Other))
	}
	return fmt.Sprintf("%s → serving %s: %s — devenv's own %s", s.Trigger, secs(s.Total), strings.Join(parts, " · "), secs(s.Own()))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// summarize makes a save's summary from its recorded steps: the batch's
// first change was at first (zero: unknown, the work's start counts),
// its work started at start and ended at end.
func summarize(trigger string, services []string, first, start, end time.Time, steps []stepTime) SaveSummary {
	if first.IsZero() || first.After(start) {
		first = start
	}
	s := SaveSummary{Trigger: trigger, Services: services, Total: end.Sub(first), Quiet: start.Sub(first)}
	var kinds []stepKind
	byKind := map[stepKind][]stepTime{}
	for _, st := range steps {
		if st.kind == "" {
			continue // devenv's, counted in Other
		}
		if _, ok := byKind[st.kind]; !ok {
			kinds = append(kinds, st.kind)
		}
		byKind[st.kind] = append(byKind[st.kind], st)
	}
	var all []stepTime
	for _, k := range kinds {
		d := wallTime(byKind[k])
		all = append(all, byKind[k]...)
		if k == stepPrebuild {
			s.Prebuild = d
			continue
		}
		s.Steps = append(s.Steps, StepCost{Name: string(k), Duration: d})
	}
	s.Other = max(0, end.Sub(start)-wallTime(all))
	return s
}

// wallTime is the time covered by steps, overlaps counted once.
func wallTime(steps []stepTime) time.Duration {
	s := slices.Clone(steps)
	slices.SortFunc(s, func(a, b stepTime) int { return a.start.Compare(b.start) })
	var total time.Duration
	var until time.Time // the end of the time counted so far
	for _, st := range s {
		from, to := st.start, st.start.Add(st.d)
		if from.Before(until) {
			from = until
		}
		if to.After(from) {
			total += to.Sub(from)
			until = to
		}
	}
	return total
}
