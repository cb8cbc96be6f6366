package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/images"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// runDevenv runs devenv in process with args and returns its exit code,
// stdout and stderr; stderr goes to t's log as it comes, stdout after.
func runDevenv(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	var out strings.Builder
	errLog := &testenv.Log{TB: t}
	code := Run(ctx, args, Streams{In: strings.NewReader(""), Out: &out, Err: errLog})
	t.Logf("devenv %s: stdout:\n%s", strings.Join(args, " "), out.String())
	return code, out.String(), errLog.String()
}

// forgetLoadedNotes removes, when t ends, the notes of loaded stand-ins
// that `images load` adds to the user's cache folder during t.
func forgetLoadedNotes(t *testing.T) {
	remember, err := images.RememberDir()
	if err != nil {
		return
	}
	before := map[string]bool{}
	entries, _ := os.ReadDir(remember)
	for _, e := range entries {
		before[e.Name()] = true
	}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(remember)
		for _, e := range entries {
			if !before[e.Name()] && strings.HasPrefix(e.Name(), "loaded-") {
				_ = os.Remove(filepath.Join(remember, e.Name()))
			}
		}
	})
}

// waitForOutput waits until out holds what, failing t when up ended first or
// timeout passed.
func waitForOutput(ctx context.Context, t *testing.T, out *testenv.Log, ended chan int, what string, timeout time.Duration) {
	t.Helper()
	err := testenv.Eventually(ctx, timeout, 200*time.Millisecond, func() error {
		if strings.Contains(out.String(), what) {
			return nil
		}
		select {
		case code := <-ended:
			ended <- code
			return fmt.Errorf("up ended (exit %d) before %q", code, what)
		default:
		}
		return fmt.Errorf("no %q yet", what)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
}
