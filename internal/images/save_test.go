package images

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/images/java"
	"github.com/devenv-tool/devenv/internal/images/kindnode"
)

// TestCheckTarget: an archive path whose folder is missing, is a file, or
// that names a folder is refused with ErrTarget before any work, and a
// check leaves nothing behind.
func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string // want "" means no error
	}{
		{"new file", filepath.Join(dir, "room.tar.gz"), ""},
		{"existing file is replaced", file, ""},
		{"missing folder", filepath.Join(dir, "nope", "room.tar"), "the folder " + filepath.Join(dir, "nope") + " does not exist"},
		{"a file as folder", filepath.Join(file, "room.tar"), file + " is not a folder"},
		{"a folder as file", filepath.Join(dir, "sub"), filepath.Join(dir, "sub") + " is a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTarget(tt.path)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckTarget(%s): %v", tt.path, err)
			case tt.want != "" && (!errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckTarget(%s): %v; want ErrTarget and %q", tt.path, err, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("CheckTarget left files behind: %v", entries)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		if err := CheckTarget(filepath.Join(ro, "room.tar")); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("read-only folder: %v", err)
		}
	}
}

// TestNoteLoaded: stand-ins loaded from a bundle are noted by name, other
// images are not, and a Resolver reads the notes back (only for the
// stand-in's current ref, and only with RememberIn set).
func TestNoteLoaded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pull-failed")
	noted, err := NoteLoaded(dir, []string{java.JRERef, "devenv.local/shop-api:0123456789ab", "alpine:3.20"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(noted, []string{"jre"}) {
		t.Errorf("noted %v, want [jre]", noted)
	}
	r := &Resolver{RememberIn: dir}
	for _, s := range All() {
		if got, want := r.loadedNoted(s), s.Name == "jre"; got != want {
			t.Errorf("%s: loadedNoted %v, want %v", s.Name, got, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "loaded-kind-node"), []byte("devenv.local/kind-node:old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range All() {
		if s.Ref == kindnode.Ref && r.loadedNoted(s) {
			t.Errorf("a note for another version of %s counts", s.Name)
		}
	}
	if got, _, err := (&Resolver{}).loadedStandIn(t.Context(), "eclipse-temurin:17-jre"); err != nil || got.Ref != "" {
		t.Errorf("without RememberIn: %+v, %v", got, err)
	}
}

// TestEvery: the progress ticker calls back while running and never after
// stop returns.
func TestEvery(t *testing.T) {
	var calls atomic.Int32
	stop := every(time.Millisecond, func(time.Duration) { calls.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	n := calls.Load()
	if n < 3 {
		t.Fatalf("%d calls in 5s", n)
	}
	time.Sleep(10 * time.Millisecond)
	if calls.Load() != n {
		t.Errorf("called after stop")
	}
}

// TestCounting: the counting reader and writer count what passes.
func TestCounting(t *testing.T) {
	var sb strings.Builder
	w := &countingWriter{w: &sb}
	_, _ = w.Write([]byte("hello"))
	_, _ = w.Write([]byte(" world"))
	r := &countingReader{r: strings.NewReader("abcdef")}
	buf := make([]byte, 4)
	_, _ = r.Read(buf)
	_, _ = r.Read(buf)
	if w.n.Load() != 11 || r.n.Load() != 6 || sb.String() != "hello world" {
		t.Errorf("wrote %d (%q), read %d", w.n.Load(), sb.String(), r.n.Load())
	}
}
