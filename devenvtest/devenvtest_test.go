package devenvtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/kafka"
)

var (
	errHeld  = fmt.Errorf("%w: project p is held by another devenv (pid 42, devenv up since 2026-01-02 03:04:05)", devenv.ErrBusy)
	errStale = fmt.Errorf("%w: service web is not ready (0 of 1 pods)", devenv.ErrNotCurrent)
)

// script is a fake devenv: each call to up or attach returns the next of
// its errors (the last one once they run out), and every call is noted.
type script struct {
	mu     sync.Mutex
	up     []error
	attach []error
	down   error
	calls  []string
}

func (s *script) next(list *[]error) error {
	if len(*list) == 0 {
		return nil
	}
	err := (*list)[0]
	if len(*list) > 1 {
		*list = (*list)[1:]
	}
	return err
}

func (s *script) note(call string, wait time.Duration) {
	how := "wait"
	if wait < 0 {
		how = "nowait"
	}
	s.calls = append(s.calls, call+"("+how+")")
}

func (s *script) steps() steps {
	return steps{
		up: func(_ context.Context, wait time.Duration) (*devenv.Env, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.note("up", wait)
			if err := s.next(&s.up); err != nil {
				return nil, err
			}
			return &devenv.Env{}, nil
		},
		attach: func(_ context.Context, wait time.Duration) (*devenv.Env, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.note("attach", wait)
			if err := s.next(&s.attach); err != nil {
				return nil, err
			}
			return &devenv.Env{}, nil
		},
		down: func(_ context.Context, wait time.Duration) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.note("down", wait)
			return s.down
		},
		poll: time.Millisecond,
	}
}

func TestAcquire(t *testing.T) {
	boom := errors.New("building image web: boom")
	for _, tc := range []struct {
		name      string
		s         *script
		reuse     bool
		timeout   time.Duration
		wantCalls []string
		wantIs    []error
		wantErr   []string // substrings; none: no error
	}{
		{name: "current or brought up to date by Up", s: &script{}, reuse: true,
			wantCalls: []string{"up(nowait)"}},
		{name: "held by a watching up: attach", s: &script{up: []error{errHeld}}, reuse: true,
			wantCalls: []string{"up(nowait)", "attach(wait)"}},
		{name: "held and not current, then current", s: &script{up: []error{errHeld}, attach: []error{errStale, nil}}, reuse: true,
			wantCalls: []string{"up(nowait)", "attach(wait)", "up(nowait)", "attach(wait)"}},
		{name: "held and not current, then the holder ends", s: &script{up: []error{errHeld, nil}, attach: []error{errStale}}, reuse: true,
			wantCalls: []string{"up(nowait)", "attach(wait)", "up(nowait)"}},
		{name: "held and never current", s: &script{up: []error{errHeld}, attach: []error{errStale}}, reuse: true, timeout: 30 * time.Millisecond,
			wantIs: []error{devenv.ErrBusy, devenv.ErrNotCurrent, context.DeadlineExceeded}, wantErr: []string{"timed out", "pid 42", "service web is not ready"}},
		{name: "an exclusive holder never finishes", s: &script{up: []error{errHeld}, attach: []error{errHeld}}, reuse: true,
			wantCalls: []string{"up(nowait)", "attach(wait)"}, wantIs: []error{devenv.ErrBusy}, wantErr: []string{"timed out", "pid 42"}},
		{name: "up fails", s: &script{up: []error{boom}}, reuse: true,
			wantCalls: []string{"up(nowait)"}, wantIs: []error{boom}, wantErr: []string{"building image web: boom"}},
		{name: "attach fails otherwise", s: &script{up: []error{errHeld}, attach: []error{errors.New("connecting to Docker: refused")}}, reuse: true,
			wantCalls: []string{"up(nowait)", "attach(wait)"}, wantErr: []string{"attaching", "refused"}},
		{name: "no reuse: down first", s: &script{}, reuse: false,
			wantCalls: []string{"down(wait)", "up(nowait)"}},
		{name: "no reuse: down fails", s: &script{down: boom}, reuse: false,
			wantCalls: []string{"down(wait)"}, wantIs: []error{boom}, wantErr: []string{"removing the environment first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = time.Minute
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			env, err := acquire(ctx, tc.s.steps(), tc.reuse, log.Nop())
			if len(tc.wantErr) == 0 {
				if err != nil || env == nil {
					t.Fatalf("acquire: %v", err)
				}
				env.Close()
			} else {
				if err == nil {
					t.Fatal("acquire succeeded")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				for _, w := range tc.wantIs {
					if !errors.Is(err, w) {
						t.Errorf("error %q is not %v", err, w)
					}
				}
			}
			if tc.wantCalls != nil && !equal(tc.s.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", tc.s.calls, tc.wantCalls)
			}
		})
	}
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestStartCleanup(t *testing.T) {
	cfg, err := loadConfig([]string{"testdata/devenv.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	for _, down := range []bool{false, true} {
		s := &script{}
		t.Run(fmt.Sprint("down=", down), func(t *testing.T) {
			o := newOptions([]Option{WithDown(down), WithTimeout(time.Minute)})
			e, err := start(t, cfg, o, s.steps(), log.Nop())
			if err != nil {
				t.Fatal(err)
			}
			if e.Kube().Namespace != cfg.Namespace {
				t.Errorf("namespace %q, want %q", e.Kube().Namespace, cfg.Namespace)
			}
		})
		want := []string{"up(nowait)"}
		if down {
			want = append(want, "down(wait)")
		}
		if !equal(s.calls, want) {
			t.Errorf("down=%v: calls %v, want %v", down, s.calls, want)
		}
	}
}

func TestOptions(t *testing.T) {
	o := newOptions(nil)
	if o.timeout != DefaultTimeout || !o.reuse || o.down || o.log != nil || o.kubeconfig != "" || o.files != nil {
		t.Errorf("defaults: %+v", o)
	}
	o = newOptions([]Option{WithFile("a.yaml"), WithFile("b.yaml", "c.yaml"), WithTimeout(time.Second),
		WithReuse(false), WithDown(true), WithKubeconfig("/tmp/kc")})
	if !equal(o.files, []string{"a.yaml", "b.yaml", "c.yaml"}) || o.timeout != time.Second || o.reuse || !o.down || o.kubeconfig != "/tmp/kc" {
		t.Errorf("options: %+v", o)
	}
}

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig([]string{"testdata/devenv.yaml", "testdata/memory.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "devenvtest-unit" || len(cfg.Files) != 2 || !filepath.IsAbs(cfg.Files[0]) {
		t.Errorf("name %q files %v", cfg.Name, cfg.Files)
	}
	if _, err := loadConfig([]string{"testdata/missing.yaml"}); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestEnvQueries(t *testing.T) {
	cfg, err := loadConfig([]string{"testdata/devenv.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{tb: t, cfg: cfg, env: &devenv.Env{Config: cfg}, ctx: context.Background(), urls: map[string]string{}}
	if _, err := e.kafkaAddr(); err == nil || !strings.Contains(err.Error(), "has no Kafka") {
		t.Errorf("no broker: %v", err)
	}
	e.env.Kafka = &kafka.Endpoint{HostAddress: "127.0.0.1:45439"}
	if got := e.KafkaBootstrap(); got != "127.0.0.1:45439" {
		t.Errorf("KafkaBootstrap %q", got)
	}
	if u, err := e.H2JDBCURL(); err == nil || !strings.Contains(err.Error(), "mode: server") {
		t.Errorf("H2 in memory: %q, %v", u, err)
	}
	if _, err := e.serviceURL("nope"); err == nil || !strings.Contains(err.Error(), `no service "nope"`) {
		t.Errorf("unknown service: %v", err)
	}
	if k := e.Kube(); k.Namespace != "devenvtest-unit" || k.Client != nil {
		t.Errorf("Kube without cluster: %+v", k)
	}
	e.env.Cluster = &cluster.Cluster{Context: "kind-devenvtest-unit"}
	if k := e.Kube(); k.Context != "kind-devenvtest-unit" {
		t.Errorf("Kube: %+v", k)
	}
}

func TestUniqueTopic(t *testing.T) {
	a, b := uniqueTopic("transfers"), uniqueTopic("transfers")
	if !regexp.MustCompile(`^transfers-[0-9a-f]{8}$`).MatchString(a) || a == b {
		t.Errorf("topics %q, %q", a, b)
	}
}

func TestSummarize(t *testing.T) {
	dir := t.TempDir()
	status := `{"project":"p","cluster":{"name":"p","ready":true},
	"external":[{"component":"kafka","container":"devenv-p-kafka","ready":true}],
	"services":[{"name":"web","desired":1,"readyPods":0,"ready":false,"message":"CrashLoopBackOff"},
	            {"name":"api","desired":1,"readyPods":1,"ready":true}]}`
	var lines []string
	for i := 1; i <= 30; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	files := map[string]string{
		"status.json":             status,
		"pods/web/web-1.web.log":  strings.Join(lines, "\n") + "\n",
		"pods/api/api-1.api.log":  "api is fine\n",
		"kafka.log":               "broker is fine\n",
		"pods/web/web-1.web.json": "{}",
	}
	var written []string
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		written = append(written, p)
	}
	got := summarize(dir, written)
	for _, want := range []string{dir, "✓ cluster", "✗ service  web 0/1 ready CrashLoopBackOff", "✓ service  api",
		"last lines of pods/web/web-1.web.log", "line 11\n", "line 30"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary does not say %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"line 10\n", "api is fine", "broker is fine"} {
		if strings.Contains(got, not) {
			t.Errorf("summary says %q:\n%s", not, got)
		}
	}
}

// logTB records Logf.
type logTB struct {
	testing.TB
	lines []string
}

func (l *logTB) Logf(format string, args ...any) {
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func TestTBWriter(t *testing.T) {
	tb := &logTB{TB: t}
	w := &tbWriter{tb: tb}
	lg := log.New(w, false)
	lg.Infof("✓ cluster %s", "p")
	w.stop()
	lg.Infof("after the test")
	if !equal(tb.lines, []string{"✓ cluster p"}) {
		t.Errorf("lines %q", tb.lines)
	}
}
