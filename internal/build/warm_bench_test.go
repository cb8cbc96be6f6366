package build

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWarmCheck times what a warm `devenv up` (a new process, nothing
// changed) does per service before it says "image unchanged", without
// Docker: the prebuild's check of its inputs (prebuild variants only: the
// command is recorded as current first), then Image's full scan of the
// context (a new process has no scan to build on) and the fingerprint of
// the inputs. small is the scale benchmark's service without the 50,000
// files in 1,000 folders; the difference is what the big context costs
// every up.
//
//	go test -run '^$' -bench WarmCheck -cpuprofile cpu.out ./internal/build/
func BenchmarkWarmCheck(b *testing.B) {
	for _, tc := range []struct {
		name     string
		files    int
		prebuild bool
	}{
		{"small", 0, false},
		{"50k", 50_000, false},
		{"small-prebuild", 0, true},
		{"50k-prebuild", 50_000, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			spec := scaleContext(b, tc.files)
			if tc.prebuild {
				spec.Prebuild = []string{"true"}
			}
			stateDir := b.TempDir()
			st, err := LoadState(stateDir)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if tc.prebuild {
				if _, err := Prebuild(ctx, spec, nil, st); err != nil {
					b.Fatal(err)
				}
			}
			want := warmCheck(b, ctx, spec, st)
			cpu0 := cpuTime()
			n := 0
			for b.Loop() {
				n++
				st, err := LoadState(stateDir) // a new process
				if err != nil {
					b.Fatal(err)
				}
				if key := warmCheck(b, ctx, spec, st); key != want {
					b.Fatalf("fingerprint %s, want %s", key, want)
				}
			}
			// CPU time (user and system, all threads): on a busy machine
			// steadier than the time on the clock.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(n), "cpu-ms/op")
		})
	}
}

// warmCheck is the work of BenchmarkWarmCheck: the steps Build (in
// internal/devenv) and Image take on an unchanged service, up to the
// fingerprint quickImage compares with State's.
func warmCheck(b *testing.B, ctx context.Context, spec Spec, st *State) string {
	b.Helper()
	if len(spec.Prebuild) > 0 {
		ran, err := Prebuild(ctx, spec, nil, st)
		if err != nil || ran {
			b.Fatalf("prebuild ran (%v), want it skipped", err)
		}
	}
	if _, err := recipeOf(spec, ContextOptions{}); err != nil {
		b.Fatal(err)
	}
	_, dfName, err := dockerfileOf(spec, ContextOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := st.contextCache(spec.Service)
	c.walked = st.takeWalk(spec.Service)
	if err := c.update(spec, dfName, nil); err != nil {
		b.Fatal(err)
	}
	key, err := fingerprint(spec, ContextOptions{}, "", true, c)
	if err != nil {
		b.Fatal(err)
	}
	return key
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
