package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestGitPattern(t *testing.T) {
	tests := []struct {
		line, want string
		ok         bool
	}{
		{"", "", false},
		{"# comment", "", false},
		{"target/", "**/target", true},
		{"/build", "build", true},
		{"*.class", "**/*.class", true},
		{"docs/*.md", "docs/*.md", true},
		{"!keep.class", "!**/keep.class", true},
		{`\#file`, "**/#file", true},
		{"trailing   ", "**/trailing", true},
	}
	for _, tt := range tests {
		got, ok := gitPattern(tt.line)
		if got != tt.want || ok != tt.ok {
			t.Errorf("gitPattern(%q) = %q, %v; want %q, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIsTempFile(t *testing.T) {
	temp := []string{".main.go.swp", ".main.go.swx", "main.go~", ".#main.go", "#main.go#", "4913", "Main.java___jb_tmp___", "Main.java___jb_old___", "x.tmp"}
	for _, name := range temp {
		if !isTempFile(name) {
			t.Errorf("isTempFile(%q) = false, want true", name)
		}
	}
	normal := []string{"main.go", "4914", "#", "swp", "README.md", "Dockerfile", "a#b"}
	for _, name := range normal {
		if isTempFile(name) {
			t.Errorf("isTempFile(%q) = true, want false", name)
		}
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRules(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".dockerignore"), "# comment\nnode_modules\n*.log\n")
	writeFile(t, filepath.Join(root, ".gitignore"), "target/\n*.class\n/out\n")
	r, err := loadRules(Spec{Service: "a", Root: root, Ignore: []string{"docs/**"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel    string
		wanted bool
	}{
		{"main.go", true},
		{"src/app/Main.java", true},
		{"node_modules/x/index.js", false}, // .dockerignore
		{"app.log", false},                 // .dockerignore, root only
		{"sub/app.log", true},              // .dockerignore patterns are anchored
		{"target/app.jar", false},          // .gitignore dir, any depth
		{"sub/target/app.jar", false},
		{"src/A.class", false},
		{"out/x", false},
		{"sub/out/x", true}, // "/out" is anchored
		{"docs/a.md", false},
		{".git/HEAD", false},
		{"sub/.git/config", false},
		{"src/.Main.java.swp", false},
		{"src/Main.java~", false},
		{"4913", false},
	}
	for _, tt := range tests {
		if got := r.wanted(tt.rel); got != tt.wanted {
			t.Errorf("wanted(%q) = %v, want %v", tt.rel, got, tt.wanted)
		}
	}
	for rel, skip := range map[string]bool{"node_modules": true, "target": true, "sub/target": true, ".git": true, "docs": true, "src": false, "sub": false} {
		if got := r.skipDir(rel); got != skip {
			t.Errorf("skipDir(%q) = %v, want %v", rel, got, skip)
		}
	}
}

func TestRulesWatchPatterns(t *testing.T) {
	root := t.TempDir()
	// With Watch set, .dockerignore does not apply (sources built on the host).
	writeFile(t, filepath.Join(root, ".dockerignore"), "src\n")
	r, err := loadRules(Spec{Service: "a", Root: root, Watch: []string{"src/**", "pom.xml"}, Ignore: []string{"src/**/*.bak"}})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"src/main/java/A.java": true,
		"pom.xml":              true,
		"README.md":            false,
		"target/a.jar":         false,
		"src/x/A.bak":          false,
	} {
		if got := r.wanted(rel); got != want {
			t.Errorf("wanted(%q) = %v, want %v", rel, got, want)
		}
	}
}

func TestRulesExclusionKeepsDirWatched(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, ".dockerignore"), "build\n!build/keep.txt\n")
	r, err := loadRules(Spec{Service: "a", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if r.skipDir("build") {
		t.Error("skipDir(build) = true although !build/keep.txt re-includes a file in it")
	}
	if r.wanted("build/other") {
		t.Error("build/other should be ignored")
	}
}

func TestBadPatternNamesService(t *testing.T) {
	_, err := loadRules(Spec{Service: "account", Root: t.TempDir(), Watch: []string{"src/[a"}})
	if err == nil || !strings.Contains(err.Error(), `"account"`) {
		t.Fatalf("err = %v, want an error naming service \"account\"", err)
	}
}

func TestLimitError(t *testing.T) {
	err := limitError(fmt.Errorf("add: %w", syscall.ENOSPC), "/src/x")
	if !errors.Is(err, ErrInotifyLimit) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("errors.Is(%v, ErrInotifyLimit/ENOSPC) = false", err)
	}
	for _, want := range []string{"sudo sysctl fs.inotify.max_user_watches=524288", "/etc/sysctl.d/", "/src/x"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	err = limitError(syscall.EMFILE, "")
	if !strings.Contains(err.Error(), "fs.inotify.max_user_instances") {
		t.Errorf("EMFILE error %q does not name max_user_instances", err)
	}
	other := errors.New("permission denied")
	if limitError(other, "/x") != other {
		t.Error("other errors must pass through unchanged")
	}
}
