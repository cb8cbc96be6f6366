package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundleBadTarget: a bundle that cannot be written where asked, or an
// archive to load that does not exist, exits 2 with one clear line before
// any Docker call or build.
func TestBundleBadTarget(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bundle", filepath.Join(dir, "nope", "room.tar.gz")}, "the folder " + filepath.Join(dir, "nope") + " does not exist"},
		{[]string{"bundle", filepath.Join(plain, "room.tar")}, plain + " is not a folder"},
		{[]string{"bundle", dir}, dir + " is a folder"},
		{[]string{"images", "load", filepath.Join(dir, "missing.tar.gz")}, "no such file or directory"},
	}
	for _, tt := range tests {
		code, out, errOut := run(t, append(tt.args, "-f", rootConfig)...)
		if code != ExitConfig || out != "" || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "usage error") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left behind: %v", entries)
	}
}
