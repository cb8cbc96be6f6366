package dirs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenOwn(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "user-file")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard")
	if err := os.Link(target, hard); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		create     bool
		want       string // error text; "" = opens
	}{
		{"new file", filepath.Join(dir, "new"), true, ""},
		{"missing without create", filepath.Join(dir, "missing"), false, "no such file"},
		{"symbolic link", link, true, "symbolic link"},
		{"symbolic link, no create", link, false, "symbolic link"},
		{"folder", dir, true, "is a directory"},
		{"hard link", hard, true, "2 hard links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, err := OpenOwn(tc.path, tc.create)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				fi, _ := f.Stat()
				f.Close()
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("mode %v, want 0600", fi.Mode().Perm())
				}
				return
			}
			if err == nil {
				f.Close()
				t.Fatalf("opened; want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("the link's target now holds %q", b)
	}
}

func TestKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := keyIn(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keyIn(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize || !bytes.Equal(k1, k2) {
		t.Errorf("key %x then %x; want the same %d bytes", k1, k2, KeySize)
	}
	if fi, err := os.Stat(filepath.Join(dir, "k")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	other, err := keyIn(dir, "other")
	if err != nil || bytes.Equal(other, k1) {
		t.Errorf("another key: %x, %v; want a different one", other, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want the 2 keys and nothing left over", len(entries))
	}

	target := filepath.Join(dir, "target")
	_ = os.WriteFile(target, bytes.Repeat([]byte("x"), KeySize), 0o600)
	_ = os.Symlink(target, filepath.Join(dir, "planted"))
	if _, err := keyIn(dir, "planted"); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("planted link: %v; want it refused", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "short"), []byte("abc"), 0o600)
	if _, err := keyIn(dir, "short"); err == nil || !strings.Contains(err.Error(), "3 bytes") {
		t.Errorf("short key: %v; want it refused", err)
	}
}
