package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/images"
)

func TestPrintImages(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	infos := []images.Info{
		{Name: "kind-node", Ref: "devenv.local/kind-node:v1.37.2", Replaces: "kindest/node"},
		{Name: "jre", Ref: "devenv.local/jre:17", Replaces: "eclipse-temurin", Present: true, UpToDate: true, Size: 329e6, Created: now.Add(-90 * time.Minute)},
		{Name: "h2", Ref: "devenv.local/h2:2.1.214", Present: true, Size: 332e6, Created: now.Add(-3 * 24 * time.Hour)},
	}
	var out bytes.Buffer
	if err := printImages(&out, infos, "table", now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, want := range [][]string{
		{"NAME", "IMAGE", "REPLACES", "STATUS"},
		{"kind-node", "kindest/node", "missing"},
		{"jre", "eclipse-temurin", "up to date", "329 MB", "1h ago"},
		{"h2", "outdated", "332 MB", "3d ago"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	out.Reset()
	if err := printImages(&out, infos, "json", now); err != nil {
		t.Fatal(err)
	}
	var back []images.Info
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 || back[1].Name != "jre" || !back[1].UpToDate || back[0].Present {
		t.Fatalf("json round trip: %+v", back)
	}
}

func TestImagesBuildUnknownNameIsUsageError(t *testing.T) {
	var stderr bytes.Buffer
	g := &globals{streams: Streams{Out: &bytes.Buffer{}, Err: &stderr}}
	err := runImagesBuild(t.Context(), g, nil, []string{"nope"}, &imagesBuildFlags{})
	if code := exitCode(err, &stderr); code != ExitConfig || !strings.Contains(stderr.String(), `unknown stand-in "nope"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
