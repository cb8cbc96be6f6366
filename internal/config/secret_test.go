package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecretFileBounded: a secret file is read only when it is a regular
// file of at most 1 MiB; /dev/zero once read until the machine ran out of memory.
func TestSecretFileBounded(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := write(t, dir, "ok", strings.Repeat("x", MaxSecretFile-1)+"\n")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	pos := Pos{File: "devenv.yaml", Line: 9}
	lookup := func(string) (string, bool) { return "", false }
	tests := []struct {
		name, file string
		readFile   func(string) ([]byte, error)
		want       string
	}{
		{"device", "/dev/zero", nil, "devenv.yaml:9: services.a.secrets.pw: secret file /dev/zero is not a regular file; devenv reads regular files of up to 1 MiB"},
		{"fifo", fifo, nil, "is not a regular file; devenv reads regular files of up to 1 MiB"},
		{"directory", dir, nil, "is not a regular file; devenv reads regular files of up to 1 MiB"},
		{"2 MiB", big, nil, "devenv.yaml:9: services.a.secrets.pw: secret file " + big + " is larger than 1 MiB"},
		{"2 MiB through another reader", big, os.ReadFile, "is larger than 1 MiB"},
		{"1 MiB through a link", link, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				v, _, err := Secret{File: tt.file, Field: "services.a.secrets.pw", Pos: pos}.Resolve(lookup, tt.readFile)
				if tt.want == "" {
					if err != nil || len(v) != MaxSecretFile-1 {
						t.Errorf("len %d, err %v", len(v), err)
					}
					return
				}
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v\nwant %q", err, tt.want)
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("reading the secret file did not return")
			}
		})
	}
}
