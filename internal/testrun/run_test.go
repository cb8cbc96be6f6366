package testrun

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
)

// lockedBuffer is an output that tests may read while a run writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func shellTest(dir, script string, timeout time.Duration) *config.Test {
	return &config.Test{Name: "t", Command: []string{script}, Shell: true, Dir: dir, Timeout: timeout}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DEVENV_TESTRUN_BASE", "from-process")
	t.Setenv("DEVENV_NAMESPACE", "from-process")
	vars := Vars{Namespace: "shop", KubeContext: "kind-shop", ServiceURLs: map[string]string{"account": "http://127.0.0.1:18080"}}
	tests := []struct {
		name     string
		test     *config.Test
		status   Status
		exitCode int
		out      string // the whole output
		errWant  string // in Err
	}{
		{"passes", &config.Test{Name: "t", Command: []string{"true"}, Dir: dir, Timeout: time.Minute}, Passed, 0, "", ""},
		{"argv is not a shell line", &config.Test{Name: "t", Command: []string{"echo", "$HOME", "a  b"}, Dir: dir, Timeout: time.Minute}, Passed, 0, "$HOME a  b\n", ""},
		{"fails with its exit code", shellTest(dir, "exit 3", time.Minute), Failed, 3, "", "exited with 3"},
		{"stdout and stderr together", shellTest(dir, "echo out; echo err >&2; exit 1", time.Minute), Failed, 1, "out\nerr\n", ""},
		{"runs in its folder", shellTest(dir, "pwd", time.Minute), Passed, 0, dir + "\n", ""},
		{"environment: process, vars, then its own", &config.Test{Name: "t", Shell: true, Dir: dir, Timeout: time.Minute,
			Command: []string{`echo "$DEVENV_TESTRUN_BASE $DEVENV_NAMESPACE $DEVENV_KUBE_CONTEXT $DEVENV_SERVICE_ACCOUNT_URL $EXTRA"`},
			Env:     map[string]string{"EXTRA": "extra", "DEVENV_KUBE_CONTEXT": "own"}},
			Passed, 0, "from-process shop own http://127.0.0.1:18080 extra\n", ""},
		{"killed by a signal", shellTest(dir, "kill -9 $$", time.Minute), Failed, -1, "", "signal: killed"},
		{"missing program", &config.Test{Name: "t", Command: []string{"devenv-no-such-program"}, Dir: dir, Timeout: time.Minute}, Error, -1, "", "starting test t (devenv-no-such-program in " + dir + ")"},
		{"missing folder", &config.Test{Name: "t", Command: []string{"true"}, Dir: filepath.Join(dir, "nope"), Timeout: time.Minute}, Error, -1, "", "no such file or directory"},
		{"no command", &config.Test{Name: "t", Dir: dir, Timeout: time.Minute}, Error, -1, "", "has no command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r := Run(context.Background(), tt.test, vars, &out)
			if r.Name != "t" || r.Status != tt.status || r.ExitCode != tt.exitCode || r.Timeout != tt.test.Timeout {
				t.Errorf("result = %+v, want status %q exit %d", r, tt.status, tt.exitCode)
			}
			if (r.Err == nil) != (tt.status == Passed) || (tt.errWant != "" && !strings.Contains(r.Err.Error(), tt.errWant)) {
				t.Errorf("err = %v, want %q", r.Err, tt.errWant)
			}
			if out.String() != tt.out {
				t.Errorf("output %q, want %q", out.String(), tt.out)
			}
		})
	}
}

// gone waits up to 5 s for process pid to be gone (or a zombie, when
// nothing reaps the orphans of this container).
func gone(t *testing.T, pid int) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err == nil {
			if _, after, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(after, "Z") {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// waitPID waits for the test to write a child's pid into file.
func waitPID(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(file)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", file)
	return 0
}

// TestRunTimeoutKillsTheGroup: a test whose processes ignore SIGTERM is
// killed, child and all, within its timeout and KillGrace.
func TestRunTimeoutKillsTheGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	tt := shellTest(dir, `trap "" TERM; sleep 60 & echo $! > pid; echo started; wait`, 300*time.Millisecond)
	start := time.Now()
	var out lockedBuffer
	r := Run(context.Background(), tt, Vars{}, &out)
	took := time.Since(start)
	if r.Status != TimedOut || r.ExitCode != -1 || r.Err == nil || !strings.Contains(r.Err.Error(), "timed out after 300ms") {
		t.Errorf("result = %+v, want timed out", r)
	}
	if limit := tt.Timeout + KillGrace + 3*time.Second; took > limit {
		t.Errorf("took %v, want under %v", took, limit)
	}
	if out.String() != "started\n" {
		t.Errorf("output %q", out.String())
	}
	if pid := waitPID(t, pidFile); !gone(t, pid) {
		t.Errorf("the test's child %d still runs", pid)
	}
}

// TestRunCancel: a done context stops the test, and says cancelled, not
// timed out.
func TestRunCancel(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		waitPID(t, filepath.Join(dir, "pid"))
		cancel()
	}()
	start := time.Now()
	r := Run(ctx, shellTest(dir, "sleep 60 & echo $! > pid; wait", time.Minute), Vars{}, nil)
	if r.Status != Cancelled || r.ExitCode != -1 || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("result = %+v, want cancelled", r)
	}
	if took := time.Since(start); took > KillGrace+5*time.Second {
		t.Errorf("took %v", took)
	}
	if pid := waitPID(t, filepath.Join(dir, "pid")); !gone(t, pid) {
		t.Errorf("the test's child %d still runs", pid)
	}

	// Already done: not started at all.
	r = Run(ctx, shellTest(dir, "touch started", time.Minute), Vars{}, nil)
	if _, err := os.Stat(filepath.Join(dir, "started")); r.Status != Cancelled || err == nil {
		t.Errorf("result = %+v, stat started: %v; want cancelled without starting", r, err)
	}
}

// TestRunKillsLeftovers: what a passing test leaves running in the
// background is killed, and does not hold the result up.
func TestRunKillsLeftovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, script := range []string{
		"sleep 60 >/dev/null 2>&1 & echo $! > pid",
		"sleep 60 & echo $! > pid", // keeps the output open
	} {
		_ = os.Remove(filepath.Join(dir, "pid"))
		start := time.Now()
		r := Run(context.Background(), shellTest(dir, script, time.Minute), Vars{}, &lockedBuffer{})
		if r.Status != Passed || r.ExitCode != 0 {
			t.Errorf("%q: result = %+v, want passed", script, r)
		}
		if took := time.Since(start); took > KillGrace+3*time.Second {
			t.Errorf("%q: took %v", script, took)
		}
		if pid := waitPID(t, filepath.Join(dir, "pid")); !gone(t, pid) {
			t.Errorf("%q: the leftover %d still runs", script, pid)
		}
	}
}
