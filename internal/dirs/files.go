package dirs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// OpenOwn opens a file of devenv's own in one of its folders, never
// following a symbolic link at path (O_NOFOLLOW). With create, a missing
// file is created 0600 and created is true; an existing one is opened as it
// is, never truncated. A path that is not a regular file, that belongs to
// another user or that has other hard links is refused: devenv does not
// write through a link someone planted.
func OpenOwn(path string, create bool) (f *os.File, created bool, err error) {
	const flags = os.O_RDWR | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	if create {
		f, err = os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, refuseLink(path, err)
		}
	}
	f, err = os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, false, refuseLink(path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("checking %s: %w", path, err)
	}
	if err := checkOwnFile(path, fi, os.Geteuid()); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, false, nil
}

// refuseLink turns the error O_NOFOLLOW gives for a symbolic link (ELOOP)
// into one that says so.
func refuseLink(path string, err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("refusing %s: it is a symbolic link, not a file devenv created (remove it)", path)
	}
	return fmt.Errorf("opening %s: %w", path, err)
}

// checkOwnFile refuses what is not a regular file of the user's own with a
// single link.
func checkOwnFile(path string, fi os.FileInfo, uid int) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("refusing %s: it is not a regular file (%s); remove it", path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if int(st.Uid) != uid {
			return fmt.Errorf("refusing %s: it belongs to user %d, not to you (%d); remove it", path, st.Uid, uid)
		}
		if st.Nlink != 1 {
			return fmt.Errorf("refusing %s: it has %d hard links, a file devenv created has one; remove it", path, st.Nlink)
		}
	}
	return nil
}

// KeySize is the size of the keys Key returns.
const KeySize = 32

// Key returns the random KeySize-byte key kept in the state folder under
// name, creating it the first time (0600; written whole to a new file and
// then linked into place, so a concurrent reader never sees half a key).
// The key never leaves this machine.
func Key(name string) ([]byte, error) {
	dir, err := State()
	if err != nil {
		return nil, err
	}
	return keyIn(dir, name)
}

func keyIn(dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	if key, err := readKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("making the key %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, name+".new-*")
	if err != nil {
		return nil, fmt.Errorf("making the key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the key %s: %w", path, err)
	}
	// Link, unlike rename, never replaces: when another process made the
	// key meanwhile, theirs is kept and read.
	err = os.Link(tmp.Name(), path)
	_ = os.Remove(tmp.Name()) // before reading: the key must have one link
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("writing the key %s: %w", path, err)
	}
	return readKey(path)
}

// readKey reads a key through OpenOwn and checks its size.
func readKey(path string) ([]byte, error) {
	f, _, err := OpenOwn(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the key %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("refusing the key %s: %d bytes, want %d (remove it and devenv makes a new one)", path, len(key), KeySize)
	}
	return key, nil
}
