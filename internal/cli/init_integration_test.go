package cli

import (
	"context"
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

// TestIntegrationInit writes each project devenv init offers (the one-service
// Go and Java projects, and the cosmos example) under
// a unique name and brings it up in-process (up --no-watch): every part
// ready, then down. Each subtest has a kind cluster of its own.
func TestIntegrationInit(t *testing.T) {
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
	// Host ports chosen, locks and prebuild inputs of the throwaway projects
	// stay out of the user's state folder.
	t.Setenv(dirs.StateEnv, t.TempDir())

	for _, lang := range []string{"go", "java", "cosmos"} {
		t.Run(lang, func(t *testing.T) {
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "project")
			name := testenv.Name("init-" + lang + "-")
			devenv := func(ctx context.Context, args ...string) (int, string) {
				out := &testenv.Log{TB: t}
				code := Run(ctx, args, Streams{In: strings.NewReader(""), Out: out, Err: out})
				return code, out.String()
			}
			kind := "--lang"
			if lang == "cosmos" {
				kind = "--example"
			}
			if code, out := devenv(ctx, "init", kind, lang, "--name", name, dir); code != ExitOK {
				t.Fatalf("init: exit %d: %s", code, out)
			}
			cfgArgs := []string{"-f", filepath.Join(dir, "devenv.yaml"), "--kubeconfig", filepath.Join(tmp, "kubeconfig")}
			t.Cleanup(func() {
				if code, out := devenv(context.Background(), append([]string{"down"}, cfgArgs...)...); code != ExitOK {
					t.Errorf("down: exit %d: %s", code, out)
				}
				testenv.RemoveImages(t, docker, project.LabelProject+"="+name)
			})
			t0 := time.Now()
			if code, out := devenv(ctx, append([]string{"up", "--no-watch"}, cfgArgs...)...); code != ExitOK {
				t.Fatalf("up --no-watch: exit %d: %s", code, out)
			}
			t.Logf("up took %s", time.Since(t0))
			code, out := devenv(ctx, append([]string{"status"}, cfgArgs...)...)
			if code != ExitOK {
				t.Fatalf("status: exit %d (not ready): %s", code, out)
			}
			for _, svc := range map[string][]string{"go": {"publisher"}, "java": {"notes"}, "cosmos": {"account", "transfermoney"}}[lang] {
				if !regexp.MustCompile(`(?m)^.*\b` + svc + `\b.*1/1 ready`).MatchString(out) {
					t.Errorf("status does not show %s ready:\n%s", svc, out)
				}
			}
			if lang != "java" {
				return
			}

			// A workshop laptop has a JDK and no Go: with no go command on
			// PATH, a saved change of the Java service is still updated in
			// place (the supervisor ships inside devenv).
			t.Setenv("PATH", withoutGo(t, os.Getenv("PATH")))
			if _, err := exec.LookPath("go"); err == nil {
				t.Fatal("go is still on PATH")
			}
			wctx, stop := context.WithCancel(ctx)
			watchOut := &testenv.Log{TB: t}
			ended := make(chan int, 1)
			go func() {
				ended <- Run(wctx, append([]string{"up", "--ui=false"}, cfgArgs...), Streams{In: strings.NewReader(""), Out: watchOut, Err: watchOut})
			}()
			defer func() { stop(); <-ended }()
			waitForOutput(ctx, t, watchOut, ended, "watching 1 services", 3*time.Minute)
			version := filepath.Join(dir, "notes", "src", "main", "java", "notes", "Version.java")
			src, err := os.ReadFile(version)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(version, []byte(strings.Replace(string(src), `"v1"`, `"v2"`, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			waitForOutput(ctx, t, watchOut, ended, "notes ✓", 3*time.Minute)
			if !strings.Contains(watchOut.String(), "(updated in place)") {
				t.Errorf("the save was not updated in place:\n%s", watchOut.String())
			}
		})
	}
}

// withoutGo is PATH without the folders that hold a go command.
func withoutGo(t *testing.T, path string) string {
	t.Helper()
	var keep []string
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			continue
		}
		keep = append(keep, d)
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}
