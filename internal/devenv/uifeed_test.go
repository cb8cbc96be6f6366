package devenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/ui"
)

// The loop tells the browser view each save's steps and how each service
// was updated.
func TestLoopTellsTheObserver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		img   func(t *testing.T) *build.Assembled
		how   string
		ok    bool
		step  string
	}{
		{"live", func(*harness) {}, func(t *testing.T) *build.Assembled {
			return image(t, "sha256:base", "A=1", map[string]string{"app": "v2"})
		}, ui.HowLive, true, "account: updating 1 running containers in place"},
		{"swap", func(*harness) {}, func(t *testing.T) *build.Assembled {
			return image(t, "sha256:base", "A=2", map[string]string{"app": "v2"})
		}, ui.HowSwap, true, "account: swapping in " + refV2},
		{"rollout", func(h *harness) {
			h.c.swapErr = fmt.Errorf("%w: paused", cluster.ErrNoSwap)
		}, func(t *testing.T) *build.Assembled {
			return image(t, "sha256:base", "A=2", map[string]string{"app": "v2"})
		}, ui.HowRollout, true, "account: rollout"},
		{"rollout fails", func(h *harness) {
			h.c.swapErr = fmt.Errorf("%w: paused", cluster.ErrNoSwap)
			h.c.rollout = func(context.Context) error { return fmt.Errorf("pods crash") }
		}, func(t *testing.T) *build.Assembled {
			return image(t, "sha256:base", "A=2", map[string]string{"app": "v2"})
		}, ui.HowRollout, false, "account: rollout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			hub := ui.NewHub()
			h.l.obs, h.l.prog.obs = hub, hub
			hub.Status(configStatus(h.l.cfg))
			tc.setup(h)
			h.save(context.Background(), "account", refV2, tc.img(t))
			s := hub.Snapshot()
			if len(s.Saves) != 1 {
				t.Fatalf("saves %+v, want one", s.Saves)
			}
			sv := s.Saves[0]
			if sv.Trigger != "save" || sv.Running || sv.OK != tc.ok || !slices.Equal(sv.Services, []string{"account"}) {
				t.Errorf("save %+v", sv)
			}
			var steps []string
			for _, st := range sv.Steps {
				steps = append(steps, st.Name)
			}
			if !slices.Contains(steps, tc.step) {
				t.Errorf("steps %q lack %q", steps, tc.step)
			}
			i := slices.IndexFunc(s.Services, func(x ui.Service) bool { return x.Name == "account" })
			u := s.Services[i].LastUpdate
			if u == nil || u.How != tc.how || u.OK != tc.ok || (u.OK && u.Image != refV2) || (!u.OK && !strings.Contains(u.Error, "pods crash")) {
				t.Errorf("last update %+v, want %s ok=%v", u, tc.how, tc.ok)
			}
			if tm := s.Services[slices.IndexFunc(s.Services, func(x ui.Service) bool { return x.Name == "transfermoney" })]; tm.LastUpdate != nil {
				t.Errorf("transfermoney was not saved, yet has an update %+v", tm.LastUpdate)
			}
		})
	}
}

// No answer of the browser view carries a secret's value, whether it comes
// from the environment, a file or its default; the names are shown.
func TestBrowserViewShowsNoSecretValues(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "account"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "account", "Dockerfile"), []byte("FROM scratch\nCOPY app /app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("t0ken-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEVENV_UI_TEST_PASSWORD", "pa55-from-the-env")
	file := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(file, []byte(`name: uisecret
kafka: {}
services:
  account:
    context: ./account
    port: 8080
    secrets:
      db.password: {env: DEVENV_UI_TEST_PASSWORD}
      db.user: {env: DEVENV_UI_TEST_UNSET_USER, default: us3r-by-default}
      api.token: {file: ./token}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"pa55-from-the-env", "us3r-by-default", "t0ken-from-a-file"}

	hub := ui.NewHub()
	hub.Status(configStatus(cfg))
	hub.SaveStarted(ui.HowUp, serviceNames(cfg))
	hub.Applied(ui.Update{Service: "account", How: ui.HowUp, Image: "devenv.local/uisecret-account:1", OK: true})
	hub.SaveEnded()
	srv, err := ui.Listen(hub, ui.Options{Port: freePort()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	var all strings.Builder
	for _, p := range []string{"", "index.html", "app.js", "style.css", "api/snapshot", "api/topics", "api/events"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if p == "api/events" {
			// The stream does not end: its first event, the snapshot.
			r := bufio.NewReader(resp.Body)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				body = append(body, line...)
				if line == "\n" {
					break
				}
			}
		} else {
			body, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		all.Write(body)
	}
	for _, v := range values {
		if strings.Contains(all.String(), v) {
			t.Errorf("the browser view shows the secret value %q", v)
		}
	}
	for _, name := range []string{"db.password", "db.user", "api.token"} {
		if !strings.Contains(all.String(), `"`+name+`"`) {
			t.Errorf("the browser view does not name the secret %s", name)
		}
	}
}
