package testrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
)

// Status is how a run of a test ended.
type Status string

// The statuses of a Result.
const (
	Passed    Status = "passed"
	Failed    Status = "failed"    // ended with an exit code other than 0, or a signal it did not get from us
	TimedOut  Status = "timed out" // ran longer than its timeout and was stopped
	Cancelled Status = "cancelled" // stopped (or not started) because the context was done
	Error     Status = "error"     // could not be started: a missing program or folder
)

// KillGrace is how long a test's processes have to end after SIGTERM before
// they get SIGKILL, and how long a finished test's leftover processes may
// hold its output open.
const KillGrace = 2 * time.Second

// Result is how one run of a test went.
type Result struct {
	Name     string
	Status   Status
	ExitCode int // the command's exit code; -1 when it has none (not started, stopped, killed by a signal)
	Duration time.Duration
	Timeout  time.Duration // the test's timeout
	Err      error         // why it did not pass; nil when it did
}

// Run runs one test on the host and waits for it: in t.Dir, with the
// process's environment, then vars, then t.Env (later ones win), and its
// output (stdout and stderr together) written to out.
//
// The test runs in a process group of its own. When it runs longer than
// t.Timeout, or ctx is done first, the whole group gets SIGTERM and, after
// KillGrace, SIGKILL; processes a test leaves behind when it ends are killed
// too. Run never returns an error of its own: everything is in the Result.
func Run(ctx context.Context, t *config.Test, vars Vars, out io.Writer) Result {
	r := Result{Name: t.Name, ExitCode: -1, Timeout: t.Timeout}
	if out == nil {
		out = io.Discard
	}
	if ctx.Err() != nil {
		r.Status, r.Err = Cancelled, fmt.Errorf("test %s not started: %w", t.Name, context.Cause(ctx))
		return r
	}
	argv := t.Argv()
	if len(argv) == 0 || argv[0] == "" {
		r.Status, r.Err = Error, fmt.Errorf("test %s has no command", t.Name)
		return r
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = t.Dir
	cmd.Env = environ(os.Environ(), vars, t.Env)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A process the test started in the background may keep its output
	// open after it ends: stop reading then rather than wait for it.
	cmd.WaitDelay = KillGrace

	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Duration = time.Since(start)
		r.Status, r.Err = Error, fmt.Errorf("starting test %s (%s in %s): %w", t.Name, commandLine(argv), t.Dir, err)
		return r
	}
	pgid := cmd.Process.Pid // Setpgid: the group is named after its leader
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timeout := time.NewTimer(t.Timeout)
	defer timeout.Stop()
	var stopped Status
	select {
	case <-done:
	case <-timeout.C:
		stopped = TimedOut
	case <-ctx.Done():
		stopped = Cancelled
	}
	if stopped != "" {
		stopGroup(pgid, done)
	}
	// Whatever the test left running in its group goes too. The group
	// cannot have been handed on: its id stays taken while it has members.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	r.Duration = time.Since(start)

	switch stopped {
	case TimedOut:
		r.Status, r.Err = TimedOut, fmt.Errorf("test %s timed out after %s", t.Name, t.Timeout)
		return r
	case Cancelled:
		r.Status, r.Err = Cancelled, fmt.Errorf("test %s cancelled: %w", t.Name, context.Cause(ctx))
		return r
	}
	ps := cmd.ProcessState
	r.ExitCode = ps.ExitCode()
	switch {
	case ps.Success():
		r.Status = Passed
	case r.ExitCode >= 0:
		r.Status, r.Err = Failed, fmt.Errorf("test %s failed: %s exited with %d", t.Name, commandLine(argv), r.ExitCode)
	default:
		r.Status, r.Err = Failed, fmt.Errorf("test %s failed: %s ended: %s", t.Name, commandLine(argv), ps)
	}
	return r
}

// stopGroup sends the process group SIGTERM, then SIGKILL after KillGrace
// unless the leader has been waited for by then, and waits for it.
func stopGroup(pgid int, done <-chan error) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(KillGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

// environ is base, then vars, then extra (sorted by name): exec uses the
// last value of a name given twice.
func environ(base []string, vars Vars, extra map[string]string) []string {
	env := append([]string(nil), base...)
	env = append(env, vars.Environ()...)
	for _, k := range config.SortedKeys(extra) {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// commandLine is argv for a message, each word quoted when it needs it.
func commandLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = fmt.Sprintf("%q", a)
		}
		words[i] = a
	}
	return strings.Join(words, " ")
}
