package devenvtest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/kafka"
)

// downTimeout bounds the Down that WithDown(true) runs at cleanup.
const downTimeout = 5 * time.Minute

// Env is the environment a test uses, as Start returned it. Its methods
// that return no error end the test with t.Fatal when they fail, so call
// them from the test's goroutine.
type Env struct {
	tb  testing.TB
	cfg *config.Config
	env *devenv.Env

	// ctx lives until the test's cleanup: the port-forwards run in it.
	ctx context.Context

	mu   sync.Mutex
	urls map[string]string
	fwds []*cluster.Forward
}

// Kube is what a test needs to talk to the environment's cluster.
type Kube struct {
	Config    *rest.Config         // the REST config of the kubeconfig context
	Client    kubernetes.Interface // a clientset built from Config
	Context   string               // the kubeconfig context, kind-<cluster name>
	Namespace string               // the project's namespace
}

// Start returns the project's environment, ready: every service's pods are
// Ready and the Kafka and H2 containers run where the cluster points. It
// reuses a current environment, brings a stale one up to date, creates a
// missing one, or attaches to the one another process (a watching `devenv
// up`, another test binary) holds, as the package documentation says. On
// failure it ends the test with t.Fatal, saying which part failed and why,
// and where it collected the pods' status and logs.
//
// The environment is used, not owned: the test holds the project's lock
// shared until its cleanup (so that no `devenv up` or `devenv down` changes
// the environment meanwhile), and it keeps running afterwards unless
// WithDown(true).
//
// Start changes the process (a test binary): when the project has Kafka it
// calls kafka.ConfigureTestcontainers, which sets
// TESTCONTAINERS_RYUK_DISABLED and TESTCONTAINERS_HOST_OVERRIDE unless they
// are set and silences testcontainers-go's default logger; and on a Docker
// engine that refuses --privileged it puts devenv's docker shim first in
// PATH (cluster.InstallPrivilegedShim), because kind runs the docker CLI.
// Calling Start is asking for both.
func Start(tb testing.TB, opts ...Option) *Env {
	tb.Helper()
	o := newOptions(opts)
	w := &tbWriter{tb: tb}
	tb.Cleanup(w.stop) // registered first, runs last: nothing logs through tb after the test
	lg := log.New(w, false)
	if o.log != nil {
		lg = log.FromSlog(o.log)
	}
	cfg, err := loadConfig(o.files)
	if err != nil {
		tb.Fatalf("devenvtest: %v", err)
	}
	if cfg.Kafka != nil {
		if err := kafka.ConfigureTestcontainers(); err != nil {
			tb.Fatalf("devenvtest: %v", err)
		}
	}
	dopts := devenv.Options{Kubeconfig: o.kubeconfig, Log: lg, PrivilegedShim: true,
		// as `devenv up` (watching or not) builds them, so that a test and
		// the CLI find each other's images current
		Live: true}
	e, err := start(tb, cfg, o, realSteps(cfg, dopts), lg)
	if err != nil {
		tb.Fatalf("devenvtest: project %s: %v%s", cfg.Name, err, failureReport(cfg, dopts))
	}
	return e
}

// loadConfig reads the files (devenv.yaml without any) with relative names
// taken from the working directory now, as `devenv -f` does.
func loadConfig(files []string) (*config.Config, error) {
	if len(files) == 0 {
		files = []string{"devenv.yaml"}
	}
	abs := make([]string, len(files))
	for i, f := range files {
		a, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		abs[i] = a
	}
	return config.Load(abs...)
}

// realSteps calls devenv.
func realSteps(cfg *config.Config, opts devenv.Options) steps {
	with := func(wait time.Duration) devenv.Options {
		o := opts
		o.LockWait = wait
		return o
	}
	return steps{
		up: func(ctx context.Context, wait time.Duration) (*devenv.Env, error) {
			return devenv.Up(ctx, cfg, with(wait))
		},
		attach: func(ctx context.Context, wait time.Duration) (*devenv.Env, error) {
			return devenv.Attach(ctx, cfg, with(wait))
		},
		down: func(ctx context.Context, wait time.Duration) error {
			return devenv.Down(ctx, cfg, devenv.DownOptions{Options: with(wait)})
		},
		poll: pollInterval,
	}
}

// start is Start after the configuration is read, with the devenv calls
// given: it acquires the environment within o.timeout and registers the
// cleanup.
func start(tb testing.TB, cfg *config.Config, o options, s steps, lg *log.Logger) (*Env, error) {
	ctx, cancel := context.WithTimeout(tb.Context(), o.timeout)
	defer cancel()
	env, err := acquire(ctx, s, o.reuse, lg)
	if err != nil {
		return nil, err
	}
	fctx, stopForwards := context.WithCancel(context.Background())
	e := &Env{tb: tb, cfg: cfg, env: env, ctx: fctx, urls: map[string]string{}}
	tb.Cleanup(func() {
		stopForwards()
		e.closeForwards()
		env.Close()
		if o.down {
			dctx, cancel := context.WithTimeout(context.Background(), downTimeout)
			defer cancel()
			if err := s.down(dctx, downTimeout); err != nil {
				tb.Errorf("devenvtest: removing the environment of project %s (WithDown): %v", cfg.Name, err)
			}
		}
	})
	return e, nil
}

func (e *Env) closeForwards() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.fwds {
		_ = f.Close()
	}
	e.fwds = nil
}

// KafkaBootstrap returns the broker's address for clients on the host,
// 127.0.0.1:PORT. The test fails when the project has no Kafka.
func (e *Env) KafkaBootstrap() string {
	e.tb.Helper()
	addr, err := e.kafkaAddr()
	if err != nil {
		e.tb.Fatalf("devenvtest: %v", err)
	}
	return addr
}

func (e *Env) kafkaAddr() (string, error) {
	if e.env.Kafka == nil {
		return "", fmt.Errorf("project %s has no Kafka: add a kafka: section to %s", e.cfg.Name, strings.Join(e.cfg.Files, ", "))
	}
	return e.env.Kafka.HostAddress, nil
}

// ServiceURL returns http://127.0.0.1:PORT, a port-forward to service
// name's main port (its port: in devenv.yaml) that follows the service's
// pods across restarts and rollouts. The forward is made once per service
// and kept until the test's cleanup. The test fails when there is no such
// service or the forward cannot start.
func (e *Env) ServiceURL(name string) string {
	e.tb.Helper()
	u, err := e.serviceURL(name)
	if err != nil {
		e.tb.Fatalf("devenvtest: %v", err)
	}
	return u
}

func (e *Env) serviceURL(name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u, ok := e.urls[name]; ok {
		return u, nil
	}
	f, err := e.env.ForwardService(e.ctx, name)
	if err != nil {
		return "", err
	}
	e.fwds = append(e.fwds, f)
	u := "http://" + f.Addr()
	e.urls[name] = u
	return u, nil
}

// H2JDBCURL returns the JDBC URL of the project's H2 server for clients on
// the host, jdbc:h2:tcp://127.0.0.1:PORT (append /mem:<service> for a
// service's database), or an error when H2 runs in memory inside each
// service (h2.mode: memory, the default).
func (e *Env) H2JDBCURL() (string, error) {
	return e.env.H2HostURL()
}

// Kube returns the cluster's REST config and clientset, its kubeconfig
// context and the project's namespace.
func (e *Env) Kube() Kube {
	k := Kube{Namespace: e.cfg.Namespace}
	if c := e.env.Cluster; c != nil {
		k.Config, k.Client, k.Context = c.REST, c.Client, c.Context
	}
	return k
}

// tbWriter writes a logger's lines through tb.Logf until stop: testing
// panics on a Logf after the test has ended, and a forward may still log
// then.
type tbWriter struct {
	mu      sync.Mutex
	tb      testing.TB
	stopped bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.tb.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
