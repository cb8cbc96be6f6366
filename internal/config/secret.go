package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// MaxSecretFile is the largest secret file devenv reads: 1 MiB, as a
// Kubernetes Secret holds at most that much.
const MaxSecretFile = 1 << 20

var (
	errNotRegular = errors.New("not a regular file")
	errTooLarge   = errors.New("larger than 1 MiB")
)

// ReadSecretFile reads a secret file: a regular file (or a link to one) of at
// most MaxSecretFile bytes. Anything else (a device such as /dev/zero, a
// FIFO, a folder) is refused before a byte is read, and a file that grows
// past the bound while it is read is refused too.
func ReadSecretFile(name string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO without a writer would otherwise wait.
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errNotRegular
	}
	if st.Size() > MaxSecretFile {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSecretFile {
		return nil, errTooLarge
	}
	return data, nil
}

// Resolve returns the secret's value: from its environment variable or file,
// else from its default. fromDefault reports that the default was used, which
// marks the value as development-only. A missing value without a default is
// an *Error saying what to set. The value itself never appears in an error.
//
// readFile reads a secret file; nil means ReadSecretFile. Whatever reads it,
// a value over MaxSecretFile is refused.
func (s Secret) Resolve(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (value string, fromDefault bool, err error) {
	if readFile == nil {
		readFile = ReadSecretFile
	}
	switch {
	case s.Env != "":
		if v, ok := lookupEnv(s.Env); ok {
			return v, false, nil
		}
		if s.HasDefault {
			return s.Default, true, nil
		}
		return "", false, s.Pos.Errorf(s.Field, "environment variable %s is not set and there is no default; export it, or add default: for development", s.Env)
	case s.File != "":
		data, err := readFile(s.File)
		if err == nil && len(data) > MaxSecretFile {
			err = errTooLarge
		}
		if err == nil {
			// One trailing newline is dropped, as editors and echo add it.
			v := strings.TrimSuffix(string(data), "\n")
			return strings.TrimSuffix(v, "\r"), false, nil
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if s.HasDefault {
				return s.Default, true, nil
			}
			return "", false, s.Pos.Errorf(s.Field, "secret file %s does not exist and there is no default; create it, or add default: for development", s.File)
		case errors.Is(err, errNotRegular):
			return "", false, s.Pos.Errorf(s.Field, "secret file %s is not a regular file; devenv reads regular files of up to 1 MiB only", s.File)
		case errors.Is(err, errTooLarge):
			return "", false, s.Pos.Errorf(s.Field, "secret file %s is larger than 1 MiB, the most devenv reads (and a Kubernetes Secret holds)", s.File)
		}
		return "", false, s.Pos.Errorf(s.Field, "reading secret file %s: %v", s.File, err)
	}
	return "", false, s.Pos.Errorf(s.Field, "no env or file given")
}
