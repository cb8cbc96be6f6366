package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// start runs the supervisor (the embedded binary for the host, from Binary) over a shell script and
// returns the command and its state file.
func start(t *testing.T, script string) (*exec.Cmd, string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the supervisor is a Linux program")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := Binary(ctx, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "supervise")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cmd := exec.Command(exe, "-state", state, "-grace", "2s", "--", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// A process group of its own: the cleanup kills the supervisor and
	// every child it started, so none outlives the test holding its output.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
	})
	return cmd, state
}

// waitState polls the state file until it starts with prefix.
func waitState(t *testing.T, state, prefix string) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(state)
		if last = string(b); strings.HasPrefix(last, prefix) {
			return last
		}
	}
	t.Fatalf("state %q never started with %q", last, prefix)
	return ""
}

// waitFile polls until file exists.
func waitFile(t *testing.T, file string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(file); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", file)
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not exit")
		return -1
	}
}

func TestRestartOnHangup(t *testing.T) {
	// The child leaves a mark when asked to stop, then exits with 0.
	marks := t.TempDir()
	cmd, state := start(t, fmt.Sprintf(`trap 'touch %s/stopped-$$; exit 0' TERM; touch %[1]s/ready-$$; while :; do sleep 0.05; done`, marks))
	first := waitState(t, state, "1 running ")
	waitFile(t, filepath.Join(marks, "ready-"+strings.Fields(first)[2])) // its trap is set
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	second := waitState(t, state, "2 running ")
	oldPID := strings.Fields(first)[2]
	if strings.Fields(second)[2] == oldPID {
		t.Fatalf("the child kept its PID %s across the restart", oldPID)
	}
	if _, err := os.Stat(filepath.Join(marks, "stopped-"+oldPID)); err != nil {
		t.Fatalf("the old child was not stopped with SIGTERM: %v", err)
	}
	// SIGTERM is passed on and the supervisor exits as the child did.
	waitFile(t, filepath.Join(marks, "ready-"+strings.Fields(second)[2]))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("exit code %d after the child exited with 0", code)
	}
}

func TestImageProcessExitEndsSupervisor(t *testing.T) {
	cmd, _ := start(t, `exit 7`)
	if code := exitCode(t, cmd); code != 7 {
		t.Fatalf("exit code %d, want the child's 7", code)
	}
}

func TestRestartedChildCrashIsRestarted(t *testing.T) {
	// The first child runs until SIGTERM; the ones after a restart crash.
	flag := filepath.Join(t.TempDir(), "crash")
	cmd, state := start(t, fmt.Sprintf(`if [ -e %s ]; then exit 3; fi; touch %[1]s; trap 'exit 0' TERM; while :; do sleep 0.05; done`, flag))
	waitState(t, state, "1 running ")
	waitFile(t, flag) // the first child ran
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := waitState(t, state, "2 exited "); !strings.Contains(got, "exited with code 3") {
		t.Fatalf("state %q does not say how the child exited", got)
	}
	// Restarted after the back-off (one second), not given up.
	waitState(t, state, "3 ")
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the supervisor exited: %v", err)
	}
}

func TestEmbeddedBinaryRunsWithoutGo(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the supervisor is a Linux program")
	}
	t.Setenv("PATH", t.TempDir()) // no go command, nothing else either
	if _, err := exec.LookPath("go"); err == nil {
		t.Fatal("a go command is still in PATH")
	}
	bin, err := Binary(context.Background(), runtime.GOARCH)
	if err != nil {
		t.Fatalf("Binary without a go command: %v", err)
	}
	exe := filepath.Join(t.TempDir(), "supervise")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-state", filepath.Join(t.TempDir(), "state"), "--", "/bin/sh", "-c", "exit 5")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 5 {
		t.Fatalf("exit code %d, want the child's 5", code)
	}
}

func TestBinary(t *testing.T) {
	for _, tc := range []struct {
		arch string
		want string // in the error; "" = a binary
	}{
		{arch: "amd64"},
		{arch: "arm64"},
		{arch: "s390x", want: "not for linux/s390x images"},
		{arch: "arm", want: "linux/amd64 and linux/arm64, not for linux/arm images"},
		{arch: "", want: "and the image names no architecture"},
		{arch: "../bin/supervise-linux-amd64", want: "not for linux/../bin"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			b, err := Binary(context.Background(), tc.arch)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(b, []byte("\x7fELF")) {
					t.Fatalf("the binary for %s is not an ELF file", tc.arch)
				}
				return
			}
			if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrNoBinary saying %q", err, tc.want)
			}
		})
	}
}
