package debian

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMirror(t *testing.T) {
	apt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(apt, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	if got := Mirror(none, apt); got != DefaultMirror {
		t.Errorf("no sources: Mirror = %q, want %q", got, DefaultMirror)
	}
	deb822 := "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n"
	if err := os.WriteFile(filepath.Join(apt, "sources.list.d", "debian.sources"), []byte(deb822), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Mirror(none, apt); got != "http://mirror.example/debian" {
		t.Errorf("deb822 sources: Mirror = %q", got)
	}
	oneLine := "# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n"
	if err := os.WriteFile(filepath.Join(apt, "sources.list"), []byte(oneLine), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Mirror(none, apt); got != "http://other.example/debian" {
		t.Errorf("sources.list: Mirror = %q", got)
	}
	env := func(k string) string {
		if k == MirrorEnv {
			return "http://env.example/debian/"
		}
		return ""
	}
	if got := Mirror(env, apt); got != "http://env.example/debian" {
		t.Errorf("with %s: Mirror = %q", MirrorEnv, got)
	}
}

func TestLabelChanges(t *testing.T) {
	got := LabelChanges(map[string]string{"b": "two words", "a": `q"uote`})
	want := []string{`LABEL a="q\"uote"`, `LABEL b="two words"`}
	if !slices.Equal(got, want) {
		t.Errorf("LabelChanges = %q, want %q", got, want)
	}
}

func TestReadMessages(t *testing.T) {
	var out strings.Builder
	err := ReadMessages(strings.NewReader(`{"stream":"Step 1/2\n"}{"status":"x"}{"stream":"done\n"}`), &out)
	if err != nil || out.String() != "Step 1/2\nx\ndone\n" {
		t.Errorf("ReadMessages = %v, output %q", err, out.String())
	}
	err = ReadMessages(strings.NewReader(`{"stream":"a"}{"errorDetail":{"message":"COPY failed"},"error":"COPY failed"}`), nil)
	if err == nil || err.Error() != "COPY failed\nlast output:\n  a" {
		t.Errorf("want the stream's error, got %v", err)
	}
}

func TestStandIn(t *testing.T) {
	si := StandIn()
	if si.Name != "debian-base" || si.Ref != "devenv.local/debian-base:bookworm" || si.For != "" {
		t.Errorf("StandIn() = %q %q %q", si.Name, si.Ref, si.For)
	}
	parts, err := si.Recipe()
	if err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(parts, " "); !strings.Contains(joined, "systemd") || !strings.Contains(joined, "bookworm") {
		t.Errorf("recipe lacks packages or suite: %q", parts)
	}
}
