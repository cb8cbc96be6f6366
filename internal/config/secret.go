package config

import (
	"errors"
	"io/fs"
	"strings"
)

// Resolve returns the secret's value: from its environment variable or file,
// else from its default. fromDefault reports that the default was used, which
// marks the value as development-only. A missing value without a default is
// an *Error saying what to set. The value itself never appears in an error.
func (s Secret) Resolve(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (value string, fromDefault bool, err error) {
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
		if err == nil {
			// One trailing newline is dropped, as editors and echo add it.
			v := strings.TrimSuffix(string(data), "\n")
			return strings.TrimSuffix(v, "\r"), false, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			if s.HasDefault {
				return s.Default, true, nil
			}
			return "", false, s.Pos.Errorf(s.Field, "secret file %s does not exist and there is no default; create it, or add default: for development", s.File)
		}
		return "", false, s.Pos.Errorf(s.Field, "reading secret file %s: %v", s.File, err)
	}
	return "", false, s.Pos.Errorf(s.Field, "no env or file given")
}
