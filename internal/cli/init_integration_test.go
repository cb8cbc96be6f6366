package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
	"github.com/devenv-tool/devenv/project"
)

// TestIntegrationInit writes each one-service project with devenv init under
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

	for _, lang := range []string{"go", "java"} {
		t.Run(lang, func(t *testing.T) {
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "project")
			name := testenv.Name("init-" + lang + "-")
			devenv := func(ctx context.Context, args ...string) (int, string) {
				out := &testenv.Log{TB: t}
				code := Run(ctx, args, Streams{In: strings.NewReader(""), Out: out, Err: out})
				return code, out.String()
			}
			if code, out := devenv(ctx, "init", "--lang", lang, "--name", name, dir); code != ExitOK {
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
			svc := map[string]string{"go": "publisher", "java": "notes"}[lang]
			if !strings.Contains(out, svc) || !strings.Contains(out, "1/1 ready") {
				t.Errorf("status does not show %s ready:\n%s", svc, out)
			}
		})
	}
}
