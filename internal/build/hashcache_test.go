package build

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestContextHashes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY . /app\n")
	writeFile(t, filepath.Join(dir, "a.txt"), "aaaa")
	writeFile(t, filepath.Join(dir, "sub/b.txt"), "bbbb")
	writeFile(t, filepath.Join(dir, ".dockerignore"), "*.log\n")
	spec := Spec{Service: "svc", Project: "p", Context: dir}
	var c ContextHashes
	digest := func(changed ...string) string {
		t.Helper()
		d, err := c.Digest(spec, ContextOptions{}, changed)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// setTime gives a file an old modification time, as if saved long
	// before the scans: only its size and time vouch for it then.
	old := time.Now().Add(-time.Hour)
	setTime := func(name string) {
		t.Helper()
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	setTime("a.txt")
	setTime("sub/b.txt")
	d0 := digest()
	if d := digest(); d != d0 {
		t.Fatalf("unchanged context: %s then %s", d0, d)
	}

	tests := []struct {
		name    string
		edit    func()
		changed []string
		same    bool
	}{
		{"an ignored file", func() { writeFile(t, filepath.Join(dir, "x.log"), "noise") }, nil, true},
		{"a new time only", func() { now := time.Now(); _ = os.Chtimes(filepath.Join(dir, "a.txt"), now, now) }, nil, true},
		{"a new content", func() { writeFile(t, filepath.Join(dir, "sub/b.txt"), "BBBB") }, nil, false},
		{"the same size and time, reported by the watcher", func() {
			writeFile(t, filepath.Join(dir, "a.txt"), "AAAA")
			setTime("a.txt")
		}, []string{"a.txt"}, false},
		{"the same size and time, within 2 s of the last scan", func() {
			// Written just before the last scan, then again unseen.
			writeFile(t, filepath.Join(dir, "sub/b.txt"), "bbbb")
			digest()
			writeFile(t, filepath.Join(dir, "sub/b.txt"), "cccc")
			fi, _ := os.Stat(filepath.Join(dir, "sub/b.txt"))
			_ = os.Chtimes(filepath.Join(dir, "sub/b.txt"), fi.ModTime(), fi.ModTime())
		}, nil, false},
		{"a removed file", func() { _ = os.Remove(filepath.Join(dir, "sub/b.txt")) }, nil, false},
	}
	prev := digest()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := prev
			if tc.name == "the same size and time, within 2 s of the last scan" {
				before = ""
			}
			tc.edit()
			got := digest(tc.changed...)
			if before != "" && (got == before) != tc.same {
				t.Errorf("digest %s after the edit, %s before: same=%v, want %v", got, before, got == before, tc.same)
			}
			// A fresh cache agrees: the digest is the content's.
			var fresh ContextHashes
			if d, err := fresh.Digest(spec, ContextOptions{}, nil); err != nil || d != got {
				t.Errorf("a fresh cache gives %s (%v), the warm one %s", d, err, got)
			}
			prev = got
		})
	}
}

// BenchmarkContextHash50k hashes a 50,000-file context (1,000 folders):
// full is a cold cache (every file read), one-changed a warm cache fed the
// one path a save changed, as the watch loop does.
func BenchmarkContextHash50k(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY . /app\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for d := range 1_000 {
		sub := filepath.Join(dir, fmt.Sprintf("pkg%02d", d%10), fmt.Sprintf("sub%04d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 50 {
			p := filepath.Join(sub, fmt.Sprintf("f%03d.go", f))
			if err := os.WriteFile(p, fmt.Appendf(nil, "package p\n\n// file %d of folder %d\nvar x = %d\n", f, d, f*d), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.Chtimes(p, old, old); err != nil {
				b.Fatal(err)
			}
		}
	}
	spec := Spec{Service: "big", Project: "p", Context: dir}
	changed := filepath.Join(dir, "pkg03", "sub0003", "f007.go")
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			var c ContextHashes
			if _, err := c.Digest(spec, ContextOptions{}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-changed", func(b *testing.B) {
		var c ContextHashes
		if _, err := c.Digest(spec, ContextOptions{}, nil); err != nil {
			b.Fatal(err)
		}
		n := 0
		for b.Loop() {
			n++
			if err := os.WriteFile(changed, fmt.Appendf(nil, "package p // save %d\n", n), 0o644); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Digest(spec, ContextOptions{}, []string{"pkg03/sub0003/f007.go"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("context-tar", func(b *testing.B) {
		// What every save did before: read and pack the whole context.
		for b.Loop() {
			if _, _, _, err := buildContext(spec, ContextOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
