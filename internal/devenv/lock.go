package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/project"
)

// DefaultLockWait is how long Up and Down wait for another devenv process
// to release the project's lock before they refuse with ErrBusy.
const DefaultLockWait = 30 * time.Second

// lockPoll is how often a waiter tries the lock again.
const lockPoll = 50 * time.Millisecond

// ErrBusy is returned (wrapped, naming the holder) when another devenv
// process held the project's lock for longer than Options.LockWait.
var ErrBusy = errors.New("another devenv process holds this project's lock")

// lockMode is how a lock is held: exclusive while devenv creates, changes
// or removes the environment (up until it is ready, down), shared while an
// environment is only used (up while it watches; test binaries). Shared
// holders coexist; an exclusive one waits for every other holder.
type lockMode int

const (
	lockShared lockMode = iota
	lockExclusive
)

func (m lockMode) how() int {
	if m == lockExclusive {
		return syscall.LOCK_EX
	}
	return syscall.LOCK_SH
}

func (m lockMode) String() string {
	if m == lockExclusive {
		return "exclusive"
	}
	return "shared"
}

// lockHeader starts every lock file devenv writes, so that devenv never
// writes into a file it did not make.
const lockHeader = "devenv lock\n"

// lock is an advisory lock (flock) on one file per project identity in
// devenv's private state folder. It dies with the process, so a crashed run
// never blocks the next one. The file holds the last exclusive holder's PID,
// verb and start time (only an exclusive holder writes it), which a waiter
// shows.
type lock struct {
	f    *os.File
	path string
	id   project.ID
	mode lockMode
	lg   *log.Logger
}

// lockFile is the lock's file for id in dir.
func lockFile(dir string, id project.ID) string {
	return filepath.Join(dir, "project-"+id.String()+".lock")
}

// acquireLock takes the lock of project id in dir (devenv's state folder)
// in mode, for verb ("up", "down"). When another process holds it in a
// mode that conflicts, it says once through lg whom it waits for, waits up
// to wait (a negative wait: not at all), then refuses with ErrBusy naming
// the holder.
func acquireLock(ctx context.Context, lg *log.Logger, dir string, id project.ID, verb string, mode lockMode, wait time.Duration) (*lock, error) {
	if n := id.String(); n == "" || n[0] == '.' || strings.ContainsRune(n, filepath.Separator) {
		return nil, fmt.Errorf("taking the lock of project %q: not a project name", n)
	}
	path := lockFile(dir, id)
	f, created, err := dirs.OpenOwn(path, true)
	if err != nil {
		return nil, fmt.Errorf("taking the lock of project %s: %w", id, err)
	}
	if !created {
		if err := checkLockFile(f, path); err != nil {
			f.Close()
			return nil, err
		}
	}
	l := &lock{f: f, path: path, id: id, lg: lg}
	if err := l.take(ctx, mode, wait); err != nil {
		f.Close()
		return nil, err
	}
	if mode == lockExclusive {
		l.writeHolder(holder{pid: os.Getpid(), verb: verb, since: time.Now()})
	}
	return l, nil
}

// checkLockFile refuses a file that is neither empty (just created by
// another devenv) nor one of devenv's lock files.
func checkLockFile(f *os.File, path string) error {
	b := make([]byte, len(lockHeader))
	n, _ := f.ReadAt(b, 0)
	if n == 0 || string(b[:n]) == lockHeader {
		return nil
	}
	return fmt.Errorf("refusing the lock %s: it is not a devenv lock file; remove it", path)
}

// take flocks the file in mode, waiting as acquireLock says. It also
// converts a held lock (flock on the same file converts it), which is how
// downgrade works and how a shared holder could upgrade; but an upgrade is
// not atomic: Linux drops the shared lock first, so others may come in
// between, and a refused upgrade leaves nothing held.
func (l *lock) take(ctx context.Context, mode lockMode, wait time.Duration) error {
	fd := int(l.f.Fd())
	try := func() (bool, error) {
		err := syscall.Flock(fd, mode.how()|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		default:
			return false, fmt.Errorf("locking %s: %w", l.path, err)
		}
	}
	ok, err := try()
	if err != nil || ok {
		l.mode = mode
		return err
	}
	if wait < 0 {
		return l.busy(0)
	}
	l.lg.Infof("waiting up to %s for %s to release project %s", wait, l.readHolder(), l.id)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the lock of project %s: %w", l.id, ctx.Err())
		case <-deadline.C:
			return l.busy(wait)
		case <-tick.C:
			ok, err := try()
			if err != nil || ok {
				l.mode = mode
				return err
			}
		}
	}
}

// busy is the ErrBusy error naming the holder.
func (l *lock) busy(waited time.Duration) error {
	h := l.readHolder()
	after := ""
	if waited > 0 {
		after = " after waiting " + waited.String()
	}
	stop := ""
	if h.alive() {
		stop = fmt.Sprintf(": stop it first (Ctrl-C in its terminal, or kill %d)", h.pid)
	}
	return fmt.Errorf("%w: project %s is held by %s%s (lock %s)%s", ErrBusy, l.id, h, after, l.path, stop)
}

// downgrade turns an exclusive lock into a shared one: up does it once the
// environment is ready and it only watches, so that tests may use the
// environment meanwhile while another up or a down still waits.
func (l *lock) downgrade(ctx context.Context) error {
	if l == nil || l.mode == lockShared {
		return nil
	}
	// Converting on the same file never lets another exclusive holder in
	// on Linux (the conversion happens under the kernel's lock); should it
	// ever have to wait, it waits as long as acquiring would.
	return l.take(ctx, lockShared, DefaultLockWait)
}

// release ends the lock. An exclusive holder clears its name from the file
// first; so does a shared one that turns out to be the last holder (an up
// that watched), while others still hold it the file stays as it is.
func (l *lock) release() {
	if l == nil || l.f == nil {
		return
	}
	if l.mode == lockExclusive || syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		l.writeHolder(holder{})
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// holder is who last held a lock exclusively.
type holder struct {
	pid   int
	verb  string
	since time.Time
}

// alive reports whether the holder's process still runs.
func (h holder) alive() bool {
	if h.pid <= 0 {
		return false
	}
	err := syscall.Kill(h.pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// String names the holder for the user: "another devenv (pid 1234, devenv
// up since 2026-11-29 20:41:05)" when its process still runs.
func (h holder) String() string {
	if !h.alive() {
		return "another devenv process (one using the environment)"
	}
	return fmt.Sprintf("another devenv (pid %d, devenv %s since %s)", h.pid, h.verb, h.since.Local().Format(time.DateTime))
}

// writeHolder writes the file's content: the header and h (nothing more
// when h is zero). Only an exclusive holder calls it.
func (l *lock) writeHolder(h holder) {
	text := lockHeader
	if h.pid > 0 {
		text += fmt.Sprintf("pid %d\nverb %s\nsince %s\n", h.pid, h.verb, h.since.UTC().Format(time.RFC3339))
	}
	if _, err := l.f.WriteAt([]byte(text), 0); err == nil {
		_ = l.f.Truncate(int64(len(text)))
	}
}

// readHolder reads what the last exclusive holder wrote.
func (l *lock) readHolder() holder {
	b := make([]byte, 512)
	n, _ := l.f.ReadAt(b, 0)
	var h holder
	for _, line := range strings.Split(string(b[:n]), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "pid":
			h.pid, _ = strconv.Atoi(v)
		case "verb":
			h.verb = v
		case "since":
			h.since, _ = time.Parse(time.RFC3339, v)
		}
	}
	return h
}

// lockProject takes the lock of cfg's project in devenv's state folder, as
// opts says how long to wait.
func lockProject(ctx context.Context, cfg *config.Config, opts Options, verb string, mode lockMode) (*lock, error) {
	dir, err := dirs.State()
	if err != nil {
		return nil, err
	}
	return acquireLock(ctx, opts.logger(), dir, ProjectID(cfg), verb, mode, opts.lockWait())
}
