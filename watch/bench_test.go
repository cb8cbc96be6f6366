package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// genTree writes dirs folders (ten at the top, the rest below them) of
// files/dirs small files each under root.
func genTree(tb testing.TB, root string, files, dirs int) {
	tb.Helper()
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("pkg%02d", d%10), fmt.Sprintf("sub%04d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for f := range files / dirs {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.go", f)), []byte("package p\n"), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// BenchmarkWatchSetup50k measures New (and Close) on one service whose
// folder holds 50,000 files in 1,000 folders, with a .gitignore: what `up`
// waits for before it watches.
func BenchmarkWatchSetup50k(b *testing.B) {
	root := b.TempDir()
	genTree(b, root, 50_000, 1_000)
	if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte("*.log\nbuild/\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		w, err := New([]Spec{{Service: "big", Root: root}}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(w.WatchedDirs()); n < 1_000 {
			b.Fatalf("%d folders watched, want 1,011", n)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
