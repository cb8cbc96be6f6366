package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationBundleNoToolchain: the workshop without Go. A --lang go
// project is brought up and bundled (with Go, the instructor's machine),
// taken down, its images removed from Docker and loaded back from the
// bundle; a copy of the project in another folder (new mtimes, no bin/, no
// build state) then comes up with no go on PATH, using the bundled image
// and saying so. A changed source then makes up exit 2 with what to do.
func TestIntegrationBundleNoToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the instructor's side needs go on PATH")
	}
	t.Setenv(dirs.StateEnv, t.TempDir())
	forgetLoadedNotes(t)

	tmp := t.TempDir()
	dir := filepath.Join(tmp, "instructor")
	name := testenv.Name("nogo-")
	devenv := func(ctx context.Context, args ...string) (int, string, string) { return runDevenv(ctx, t, args...) }
	if code, _, errOut := devenv(ctx, "init", "--lang", "go", "--name", name, dir); code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	kubeconfig := []string{"--kubeconfig", filepath.Join(tmp, "kubeconfig")}
	cfgArgs := append([]string{"-f", filepath.Join(dir, "devenv.yaml")}, kubeconfig...)
	t.Cleanup(func() {
		if code, _, errOut := devenv(context.Background(), append([]string{"down"}, cfgArgs...)...); code != ExitOK {
			t.Errorf("down: exit %d: %s", code, errOut)
		}
		testenv.RemoveImages(t, docker, project.LabelProject+"="+name)
	})
	if code, _, errOut := devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...); code != ExitOK {
		t.Fatalf("up --no-watch: exit %d: %s", code, errOut)
	}
	file := filepath.Join(tmp, "room.tar.gz")
	code, out, errOut := devenv(ctx, append([]string{"bundle", "-o", "json", file}, cfgArgs[:2]...)...)
	if code != ExitOK {
		t.Fatalf("bundle: exit %d: %s", code, errOut)
	}
	var bundle bundleResult
	if err := json.Unmarshal([]byte(out), &bundle); err != nil {
		t.Fatalf("bundle -o json: %v\n%s", err, out)
	}
	var serviceRef string
	records := 0
	for _, im := range bundle.Images {
		switch im.Role {
		case "service":
			serviceRef = im.Ref
		case "record":
			records++
		}
	}
	if serviceRef == "" || records != 1 {
		t.Fatalf("bundle holds %+v; want the publisher's image and one record", bundle.Images)
	}

	// The student's machine: no environment, none of the project's images
	// but the bundle's, and a copy of the sources (new mtimes, no outputs,
	// no build state: another folder).
	if code, _, errOut := devenv(ctx, append([]string{"down"}, cfgArgs...)...); code != ExitOK {
		t.Fatalf("down: exit %d: %s", code, errOut)
	}
	testenv.RemoveImages(t, docker, project.LabelProject+"="+name)
	if code, _, errOut := devenv(ctx, "images", "load", file); code != ExitOK {
		t.Fatalf("images load: exit %d: %s", code, errOut)
	}
	student := filepath.Join(tmp, "student")
	testenv.CopyDir(t, dir, student)
	if err := os.RemoveAll(filepath.Join(student, "publisher", "bin")); err != nil {
		t.Fatal(err)
	}
	studentArgs := append([]string{"-f", filepath.Join(student, "devenv.yaml")}, kubeconfig...)
	t.Cleanup(func() {
		if code, _, errOut := devenv(context.Background(), append([]string{"down"}, studentArgs...)...); code != ExitOK {
			t.Errorf("down (student): exit %d: %s", code, errOut)
		}
	})

	t.Setenv("PATH", pathWithout(t, os.Getenv("PATH"), "go", "gofmt"))
	if _, err := exec.LookPath("go"); err == nil {
		t.Fatal("go is still on PATH")
	}
	t0 := time.Now()
	code, _, errOut = devenv(ctx, append([]string{"up", "--no-watch"}, studentArgs...)...)
	if code != ExitOK {
		t.Fatalf("up --no-watch without go: exit %d: %s", code, errOut)
	}
	t.Logf("up without go, from the bundle: %s", time.Since(t0).Round(100*time.Millisecond))
	note := "publisher: `go` is not installed: using the image from the bundle (its sources are unchanged); a saved change needs go"
	if n := strings.Count(errOut, note); n != 1 {
		t.Errorf("up said %d times %q; want once:\n%s", n, note, errOut)
	}
	if !strings.Contains(errOut, "image "+serviceRef+" from the bundle") {
		t.Errorf("up did not use the bundled image %s:\n%s", serviceRef, errOut)
	}
	if _, err := os.Stat(filepath.Join(student, "publisher", "bin")); err == nil {
		t.Errorf("a prebuild ran: publisher/bin exists")
	}
	code, out, errOut = devenv(ctx, append([]string{"status"}, studentArgs...)...)
	if code != ExitOK || !regexp.MustCompile(`(?m)^.*\bpublisher\b.*1/1 ready`).MatchString(out) {
		t.Fatalf("status: exit %d (not ready): %s%s", code, out, errOut)
	}

	// A change the bundle was not made from needs Go: exit 2, saying so.
	mainGo := filepath.Join(student, "publisher", "main.go")
	src, err := os.ReadFile(mainGo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mainGo, append(src, "\n// a student's change\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = devenv(ctx, append([]string{"up", "--no-watch"}, studentArgs...)...)
	if code != ExitConfig || !strings.Contains(errOut, "install Go, or load a bundle made from these sources") {
		t.Fatalf("up without go after a change: exit %d (want %d): %s", code, ExitConfig, errOut)
	}
}

// pathWithout is path with none of the programs names: each folder that
// holds one is replaced by a folder of links to everything else in it (so
// that docker, sh and the rest stay reachable).
func pathWithout(t *testing.T, path string, names ...string) string {
	t.Helper()
	var keep []string
	for _, d := range filepath.SplitList(path) {
		holds := false
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(d, n)); err == nil {
				holds = true
			}
		}
		if !holds {
			keep = append(keep, d)
			continue
		}
		shadow := t.TempDir()
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+e.Name()+" ") {
				if err := os.Symlink(filepath.Join(d, e.Name()), filepath.Join(shadow, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		keep = append(keep, shadow)
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}
