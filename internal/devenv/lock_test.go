package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// The lock tests need a second process: the test binary runs itself with
// lockHelperEnv set, and TestLockHelperProcess then holds the lock as told
// until its stdin closes.
const lockHelperEnv = "DEVENV_TEST_LOCK_HELPER"

var cosmos = project.ID{Name: "cosmos"}

// TestLockHelperProcess is the other process, not a test: it takes the lock
// of project cosmos in the folder $DEVENV_TEST_LOCK_HELPER in the mode its
// first argument after -- names (exclusive, shared, or downgraded: taken
// exclusive, then downgraded as Watch does), prints "locked", and releases
// the lock when its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("only run as the lock tests' helper process")
	}
	how := os.Args[len(os.Args)-1]
	mode := lockExclusive
	if how == "shared" {
		mode = lockShared
	}
	ctx := context.Background()
	l, err := acquireLock(ctx, log.Nop(), dir, cosmos, "up", mode, -1)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if how == "downgraded" {
		if err := l.downgrade(ctx); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	l.release()
	os.Exit(0)
}

// holdLock starts a helper process holding the lock in dir as how says and
// returns its PID and a function that makes it release the lock and exit.
func holdLock(t *testing.T, dir, how string) (pid int, release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "--", how)
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper process: %v", err)
			}
		})
	}
	t.Cleanup(release)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper process said %q (%v), want locked", line, err)
	}
	return cmd.Process.Pid, release
}

// signalWriter collects log output and signals each write.
type signalWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	wrote chan struct{}
}

func newSignalWriter() *signalWriter { return &signalWriter{wrote: make(chan struct{}, 100)} }

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestLockWaitsThenSucceedsWhenTheHolderReleases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pid, release := holdLock(t, dir, "exclusive")
	out := newSignalWriter()
	type result struct {
		l   *lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := acquireLock(context.Background(), log.New(out, false), dir, cosmos, "down", lockExclusive, time.Minute)
		got <- result{l, err}
	}()
	<-out.wrote // it says it waits, and whom for, before it waits
	want := fmt.Sprintf("waiting up to 1m0s for another devenv (pid %d, devenv up since ", pid)
	if !strings.Contains(out.String(), want) {
		t.Errorf("log %q lacks %q", out.String(), want)
	}
	release()
	r := <-got
	if r.err != nil {
		t.Fatalf("after the holder released: %v", r.err)
	}
	defer r.l.release()
	if h := r.l.readHolder(); h.pid != os.Getpid() || h.verb != "down" {
		t.Errorf("the file names %+v, want this process and down", h)
	}
	if n := strings.Count(out.String(), "waiting"); n != 1 {
		t.Errorf("said waiting %d times, want once: %q", n, out.String())
	}
}

func TestLockWaitsThenRefusesNamingTheHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pid, _ := holdLock(t, dir, "exclusive")
	start := time.Now()
	_, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, 300*time.Millisecond)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("refused after %s, want a wait of 300ms first", took)
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d, devenv up since", pid), "after waiting 300ms", fmt.Sprintf("kill %d", pid)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	// Another project's lock is another file.
	other, err := acquireLock(context.Background(), log.Nop(), dir, project.ID{Name: "other"}, "up", lockExclusive, -1)
	if err != nil {
		t.Errorf("another project's lock: %v", err)
	}
	other.release()
}

func TestLockSharedHoldersCoexist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	holdLock(t, dir, "shared")
	l, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "test", lockShared, -1)
	if err != nil {
		t.Fatalf("a second shared holder: %v", err)
	}
	l.release()
}

func TestLockExclusiveWaitsForShared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, release := holdLock(t, dir, "shared")
	_, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, 100*time.Millisecond)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "another devenv process (one using the environment)") {
		t.Fatalf("exclusive while another process holds it shared: %v, want ErrBusy", err)
	}
	release()
	l, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, -1)
	if err != nil {
		t.Fatalf("exclusive after the shared holder released: %v", err)
	}
	l.release()
}

func TestLockDowngradeLetsSharedIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pid, release := holdLock(t, dir, "downgraded")
	l, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "test", lockShared, -1)
	if err != nil {
		t.Fatalf("shared while up watches: %v", err)
	}
	_, err = acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, -1)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d, devenv up since", pid)) {
		t.Errorf("exclusive while up watches: %v, want ErrBusy naming pid %d", err, pid)
	}
	// The up that watched ends while a test still uses the environment:
	// its name stays until the last holder goes.
	release()
	if b, _ := os.ReadFile(lockFile(dir, cosmos)); !strings.Contains(string(b), fmt.Sprintf("pid %d", pid)) {
		t.Errorf("with a holder left, the file holds %q", b)
	}
	l.release()
	if b, _ := os.ReadFile(lockFile(dir, cosmos)); string(b) != lockHeader {
		t.Errorf("after the last holder, the file holds %q, want the header only", b)
	}
}

func TestLockWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	holdLock(t, dir, "exclusive")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := acquireLock(ctx, log.Nop(), dir, cosmos, "up", lockExclusive, time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
}

func TestLockRefusesWhatItDidNotCreate(t *testing.T) {
	dir := t.TempDir()
	path := lockFile(dir, cosmos)
	target := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	_, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, -1)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("planted link: %v, want it refused", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("the link's target now holds %q", b)
	}

	// A regular file devenv did not write is not written into.
	_ = os.Remove(path)
	if err := os.WriteFile(path, []byte("someone's file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, -1)
	if err == nil || !strings.Contains(err.Error(), "not a devenv lock file") {
		t.Errorf("foreign file: %v, want it refused", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "someone's file\n" {
		t.Errorf("the foreign file now holds %q", b)
	}

	// A folder in its place.
	_ = os.Remove(path)
	_ = os.Mkdir(path, 0o700)
	if _, err := acquireLock(context.Background(), log.Nop(), dir, cosmos, "up", lockExclusive, -1); err == nil {
		t.Error("a folder at the lock's path was accepted")
	}
}

func TestLockInPrivateStateFolder(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("DEVENV_STATE", state)
	l, err := lockProject(context.Background(), &config.Config{Name: "cosmos"}, Options{}, "up", lockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state folder: %v, %v; want mode 0700", fi, err)
	}
	fi, err = os.Stat(filepath.Join(state, "project-cosmos.lock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v, %v; want project-cosmos.lock, mode 0600", fi, err)
	}
	b, _ := os.ReadFile(filepath.Join(state, "project-cosmos.lock"))
	if want := fmt.Sprintf("devenv lock\npid %d\nverb up\nsince ", os.Getpid()); !strings.HasPrefix(string(b), want) {
		t.Errorf("lock file holds %q, want it to start with %q", b, want)
	}
	l.release()
	if b, _ := os.ReadFile(filepath.Join(state, "project-cosmos.lock")); string(b) != lockHeader {
		t.Errorf("after release the file holds %q, want the header only", b)
	}
}

// TestUpAndDownTakeTheLock: Up and Down wait for the project's lock before
// anything else (Docker is not asked), and refuse naming its holder.
func TestUpAndDownTakeTheLock(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DEVENV_STATE", state)
	cfg := &config.Config{Name: "cosmos"}
	for _, mode := range []lockMode{lockExclusive, lockShared} { // shared: an up that watches
		held, err := acquireLock(context.Background(), log.Nop(), state, cosmos, "up", lockExclusive, -1)
		if err != nil {
			t.Fatal(err)
		}
		if mode == lockShared {
			if err := held.downgrade(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		opts := Options{LockWait: -1}
		_, err = Up(context.Background(), cfg, opts)
		if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d, devenv up since", os.Getpid())) {
			t.Errorf("up while another up holds the lock %s: %v, want ErrBusy naming pid %d", mode, err, os.Getpid())
		}
		err = Down(context.Background(), cfg, DownOptions{Options: opts})
		if !errors.Is(err, ErrBusy) {
			t.Errorf("down while an up holds the lock %s: %v, want ErrBusy", mode, err)
		}
		held.release()
	}
	if _, err := acquireLock(context.Background(), log.Nop(), state, project.ID{Name: "../x"}, "up", lockExclusive, -1); err == nil {
		t.Error("a project name with a slash made a lock path")
	}
}
