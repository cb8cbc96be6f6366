package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrBusy is returned (wrapped) when another devenv up holds the project's lock.
var ErrBusy = errors.New("another devenv up is running for this project")

// lock is an exclusive advisory lock on a file in the project's .devenv folder.
type lock struct{ f *os.File }

// acquireLock takes the project's "up" lock without waiting. The lock dies
// with the process, so a crashed run never blocks the next one.
func acquireLock(dir, project string) (*lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, "up-"+project+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		holder := strings.TrimSpace(string(b))
		if pid, perr := strconv.Atoi(holder); perr == nil {
			return nil, fmt.Errorf("%w (process %d, lock %s): stop it first (Ctrl-C in its terminal, or kill %d)", ErrBusy, pid, path, pid)
		}
		return nil, fmt.Errorf("%w (lock %s)", ErrBusy, path)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lock{f: f}, nil
}

func (l *lock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
