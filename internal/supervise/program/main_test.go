package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// denyIn is an access(2) stand-in for a user who may write nowhere in
// dirs (tests run as root, which access(2) lets write anywhere).
func denyIn(dirs ...string) func(string, uint32) error {
	return func(name string, mode uint32) error {
		for _, d := range dirs {
			if name == d && mode&accessW != 0 {
				return syscall.EACCES
			}
		}
		return nil
	}
}

func fileEntry(name string, mode int64, data string) entry {
	return entry{hdr: &tar.Header{Name: strings.TrimPrefix(name, "/"), Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}, data: []byte(data)}
}

func dirEntry(name string, mode int64) entry {
	return entry{hdr: &tar.Header{Name: strings.TrimPrefix(name, "/") + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: time.Unix(0, 0)}}
}

func TestCheckWritable(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "app")
	shared := filepath.Join(root, "shared") // sticky, as /tmp
	for _, d := range []string{app, shared} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(app, "server"), filepath.Join(shared, "theirs")} {
		if err := os.WriteFile(f, []byte("v1"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test's files belong to the user running it; "another user" is
	// one that is neither root nor that user.
	me := os.Geteuid()
	other := me + 1000
	for _, tc := range []struct {
		name    string
		euid    int
		deny    []string
		entries []entry
		removed []string
		want    string // the path reported; "" = writable
		wantErr error
	}{
		{name: "root writes", euid: 0, entries: []entry{fileEntry(app+"/server", 0o755, "v2")}},
		{name: "owner writes", euid: me, entries: []entry{fileEntry(app+"/server", 0o755, "v2"), fileEntry(app+"/new/deep/file", 0o644, "x")}},
		{name: "folder not writable", euid: other, deny: []string{app},
			entries: []entry{fileEntry(app+"/server", 0o755, "v2")}, want: app + "/server", wantErr: syscall.EACCES},
		{name: "the first path that fails is named, after writable ones", euid: other, deny: []string{app},
			entries: []entry{fileEntry(shared+"/mine", 0o644, "x"), fileEntry(app+"/server", 0o755, "v2")}, want: app + "/server", wantErr: syscall.EACCES},
		{name: "missing folders under a folder not writable", euid: other, deny: []string{app},
			entries: []entry{fileEntry(app+"/lib/a/b.jar", 0o644, "x")}, want: app + "/lib/a/b.jar", wantErr: syscall.EACCES},
		{name: "removed path in a folder not writable", euid: other, deny: []string{app},
			removed: []string{app + "/server"}, want: app + "/server", wantErr: syscall.EACCES},
		{name: "removed path that is gone already", euid: other, deny: []string{app},
			removed: []string{app + "/gone"}},
		{name: "removed folder not writable", euid: other, deny: []string{app},
			removed: []string{app}, want: app, wantErr: syscall.EACCES},
		{name: "another user's file in a sticky folder", euid: other,
			entries: []entry{fileEntry(shared+"/theirs", 0o644, "x")}, want: shared + "/theirs", wantErr: syscall.EPERM},
		{name: "a new file in a sticky folder", euid: other,
			entries: []entry{fileEntry(shared+"/mine", 0o644, "x")}},
		{name: "root in a sticky folder", euid: 0,
			entries: []entry{fileEntry(shared+"/theirs", 0o644, "x")}},
		{name: "another user's folder kept as it is", euid: other,
			entries: []entry{dirEntry(app, 0o755), fileEntry(app+"/server", 0o755, "v2")}},
		{name: "another user's folder would change mode", euid: other,
			entries: []entry{dirEntry(app, 0o700)}, want: app, wantErr: syscall.EPERM},
		{name: "a file where a folder must be", euid: 0,
			entries: []entry{fileEntry(app+"/server/x", 0o644, "x")}, want: app + "/server/x", wantErr: syscall.ENOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkWritable(tc.entries, tc.removed, fsAccess{euid: tc.euid, access: denyIn(tc.deny...)})
			if got != tc.want || (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("checkWritable = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	// Nothing was changed by checking.
	if b, err := os.ReadFile(filepath.Join(app, "server")); err != nil || string(b) != "v1" {
		t.Fatalf("app/server holds %q (%v) after the checks", b, err)
	}
	if _, err := os.Stat(filepath.Join(app, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checking created a folder: %v", err)
	}
}

// TestCheckWritableAsUser checks with access(2) itself, for a user other
// than root (root may write anywhere).
func TestCheckWritableAsUser(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write anywhere; TestCheckWritable covers the checks")
	}
	app := filepath.Join(t.TempDir(), "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "server"), []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(app, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(app, 0o755) })
	got, err := checkWritable([]entry{fileEntry(app+"/server", 0o755, "v2")}, nil, fsAccess{euid: os.Geteuid(), access: access})
	if got != app+"/server" || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("checkWritable = %q, %v; want %s, permission denied", got, err, app+"/server")
	}
}

func TestExtract(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "server"), []byte("v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries := []entry{
		fileEntry(app+"/server", 0o750, "v2"),
		dirEntry(app+"/lib", 0o755),
		fileEntry(app+"/lib/a.jar", 0o644, "jar"),
		{hdr: &tar.Header{Name: strings.TrimPrefix(app, "/") + "/current", Typeflag: tar.TypeSymlink, Linkname: "server", ModTime: time.Unix(0, 0)}},
	}
	if os.Geteuid() == 0 {
		// Root gives the entries their owner: the test's own.
		for _, e := range entries {
			e.hdr.Uid, e.hdr.Gid = os.Geteuid(), os.Getegid()
		}
	}
	if err := extract(entries); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"server": "v2", "lib/a.jar": "jar", "current": "v2"} {
		if b, err := os.ReadFile(filepath.Join(app, name)); err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want %q", name, b, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(app, "server")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("server's mode: %v (%v), want 0750", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(app, ".devenv-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestReadTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string]string{"app/a.txt": "alpha", "app/empty": "", "app/big.bin": strings.Repeat("x", 1<<20)}
	for _, name := range []string{"app/a.txt", "app/empty", "app/big.bin"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "app/link", Linkname: "a.txt", Typeflag: tar.TypeSymlink}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()

	// An exec stream may go on after the end marker: readTar stops there.
	got, err := readTar(io.MultiReader(bytes.NewReader(whole), strings.NewReader("not a tar")))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d entries, want 4", len(got))
	}
	for _, e := range got[:3] {
		if string(e.data) != files[e.hdr.Name] {
			t.Errorf("%s: got %d bytes, want %d", e.hdr.Name, len(e.data), len(files[e.hdr.Name]))
		}
	}
	if got[3].hdr.Linkname != "a.txt" || len(got[3].data) != 0 {
		t.Errorf("symlink entry: %+v, %d bytes", got[3].hdr, len(got[3].data))
	}

	// A stream cut inside a file's data is an error naming the file.
	cut := whole[:512+512+512+512+1000] // a.txt, empty, then 1000 bytes of big.bin
	if _, err := readTar(bytes.NewReader(cut)); err == nil || !strings.Contains(err.Error(), "app/big.bin") {
		t.Errorf("cut stream: got %v, want an error naming app/big.bin", err)
	}
}
