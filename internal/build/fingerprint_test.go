package build

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM scratch\nCOPY app /app\n")
	write("app", "v1")
	write(".dockerignore", "logs\n")
	write("logs/x.log", "1")
	spec := Spec{Service: "s", Project: "p", Context: dir}
	key := func(spec Spec, base string, live bool) string {
		t.Helper()
		k, err := fingerprint(spec, ContextOptions{}, base, live, nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key(spec, "", false)
	if k := key(spec, "", false); k != k0 {
		t.Fatal("the same inputs gave two fingerprints")
	}
	write("logs/x.log", "12") // excluded by .dockerignore: not in the image
	if k := key(spec, "", false); k != k0 {
		t.Error("a file .dockerignore excludes changed the fingerprint")
	}
	for name, k := range map[string]string{
		"base image": key(spec, "sha256:other", false),
		"live":       key(spec, "", true),
		"build arg":  key(Spec{Service: "s", Project: "p", Context: dir, Args: map[string]string{"A": "1"}}, "", false),
		"service":    key(Spec{Service: "t", Project: "p", Context: dir}, "", false),
	} {
		if k == k0 {
			t.Errorf("another %s kept the fingerprint", name)
		}
	}
	// Same size, new modification time: a save.
	write("app", "v2")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "app"), future, future); err != nil {
		t.Fatal(err)
	}
	k1 := key(spec, "", false)
	if k1 == k0 {
		t.Error("a saved file kept the fingerprint")
	}
	write("new", "x")
	if k := key(spec, "", false); k == k1 {
		t.Error("a new file kept the fingerprint")
	}
	// A replaced Dockerfile (the stand-in rewrite) is part of it.
	k2, err := fingerprint(spec, ContextOptions{Dockerfile: []byte("FROM scratch\nCOPY app /app2\n")}, "", false, nil)
	if err != nil || k2 == key(spec, "", false) {
		t.Errorf("a rewritten Dockerfile kept the fingerprint (%v)", err)
	}
}

func TestStateImageMemo(t *testing.T) {
	dir := t.TempDir()
	s, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := ImageMemo{Key: "k", Ref: "devenv.local/p-s:abc", ID: "sha256:abc"}
	if err := s.setImage("s", m); err != nil {
		t.Fatal(err)
	}
	s2, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s2.image("s"); !ok || got != m {
		t.Errorf("read back %+v, %v", got, ok)
	}
	var nilState *State
	if _, ok := nilState.image("s"); ok {
		t.Error("a nil State remembers an image")
	}
}
