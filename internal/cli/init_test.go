package cli

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInitForms(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		name  string
		files []string // some of the files written
	}{
		{[]string{"--lang", "go"}, "my-shop", []string{"devenv.yaml", "README.md", "publisher/main.go", "publisher/build.sh"}},
		{[]string{"--lang", "java", "--name", "notes1"}, "notes1", []string{"devenv.yaml", "notes/Dockerfile", "notes/src/main/java/notes/Main.java"}},
		{[]string{"--example", "cosmos"}, "my-shop", []string{"account/build.sh", "transfermoney/go.mod", "transfermoney/README.md"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "My_Shop") // created by init
			args := append([]string{"init", "-o", "json", dir}, tc.args...)
			code, out, errOut := run(t, args...)
			if code != ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var res initResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if res.Dir != dir || res.Name != tc.name {
				t.Errorf("dir %s, name %s", res.Dir, res.Name)
			}
			for _, f := range tc.files {
				if !slices.Contains(res.Files, f) {
					t.Errorf("%s not listed in %v", f, res.Files)
				}
			}
			for _, f := range res.Files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("listed but not written: %v", err)
				}
			}
			// The project validates, and under its name.
			code, out, errOut = run(t, "validate", "-f", filepath.Join(dir, "devenv.yaml"))
			if code != ExitOK {
				t.Errorf("validate: exit %d, %s%s", code, out, errOut)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "devenv.yaml"))
			if !strings.Contains(string(b), "name: "+tc.name+"\n") {
				t.Errorf("devenv.yaml lacks name: %s:\n%s", tc.name, b)
			}
		})
	}
}

func TestInitTextOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	code, out, errOut := run(t, "init", "--lang", "go", dir)
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"✓ wrote project shop (--lang go) into " + dir, "  publisher/main.go\n", "cd " + dir + " && devenv up"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"devenv.yaml", "notes/build.sh"} {
		_ = os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, "init", "--lang", "java", "--name", "x", dir)
	if code != ExitConfig || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"2 of the files to write exist already; nothing written", filepath.Join(dir, "devenv.yaml"), filepath.Join(dir, "notes", "build.sh")} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("README.md written: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "devenv.yaml")); string(b) != "mine\n" {
		t.Errorf("devenv.yaml overwritten: %q", b)
	}
}

func TestInitBadUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--lang", "rust"}, `--lang "rust": expected go or java`},
		{[]string{"--example", "galaxy"}, `--example "galaxy": expected cosmos`},
		{nil, "say what to create: --lang go, --lang java or --example cosmos"},
		{[]string{"--lang", "go", "--example", "cosmos"}, "exclude each other"},
		{[]string{"--lang", "go", "--name", "Not_A_Name"}, `--name: "Not_A_Name" is not a valid project name`},
		{[]string{"--lang", "go", "a", "b"}, "accepts at most 1 arg"},
	} {
		args := append([]string{"init", dir}, tc.args...)
		code, out, errOut := run(t, args...)
		if code != ExitConfig || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "devenv init --help") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a usage error created %s: %v", dir, err)
	}
	// A folder name that makes no project name asks for --name.
	code, _, errOut := run(t, "init", "--lang", "go", filepath.Join(t.TempDir(), "___"))
	if code != ExitConfig || !strings.Contains(errOut, "pass --name") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestInitHelpTeaches(t *testing.T) {
	code, out, _ := run(t, "init", "--help")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"devenv init --lang go", "devenv init --lang java", "devenv init --example cosmos", "devenv up", "-o json", "exits 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}
