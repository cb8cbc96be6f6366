package devenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/devenv-tool/devenv/cluster"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testrun"
)

// ForwardService forwards a free port on 127.0.0.1 to the main port of
// service name (its `port:` in devenv.yaml), following its pods across
// swaps and rollouts (see cluster.Forward). Close the Forward when done.
func (e *Env) ForwardService(ctx context.Context, name string) (*cluster.Forward, error) {
	s := e.Config.Service(name)
	if s == nil {
		names := make([]string, 0, len(e.Config.Services))
		for _, s := range e.Config.Services {
			names = append(names, s.Name)
		}
		return nil, fmt.Errorf("no service %q in %s (services: %s)", name, e.Config.Files[0], strings.Join(names, ", "))
	}
	if e.Cluster == nil {
		return nil, fmt.Errorf("forwarding %s: the environment has no cluster connection", name)
	}
	return e.Cluster.Forward(ctx, cluster.ForwardSpec{Namespace: e.Config.Namespace, Service: name, Port: s.Port})
}

// H2HostURL is the JDBC URL of the H2 server from the host,
// jdbc:h2:tcp://127.0.0.1:PORT (append /mem:<service>;DB_CLOSE_DELAY=-1 for
// a service's database), or an error when H2 does not run as a server.
func (e *Env) H2HostURL() (string, error) {
	if e.Config.H2.Mode != config.H2Server || e.H2 == nil {
		return "", fmt.Errorf("H2 runs in memory inside each service (h2.mode: %s); set h2: {mode: server} in %s for a URL the host can use", e.Config.H2.Mode, e.Config.Files[0])
	}
	return "jdbc:h2:tcp://" + e.H2.HostAddress, nil
}

// TestVars forwards every service's main port to 127.0.0.1 and returns the
// variables declared tests get (see testrun.Vars). stop closes the forwards.
func (e *Env) TestVars(ctx context.Context) (vars testrun.Vars, stop func(), err error) {
	var fwds []*cluster.Forward
	stop = func() {
		for _, f := range fwds {
			_ = f.Close()
		}
	}
	vars = testrun.Vars{Namespace: e.Config.Namespace, Kubeconfig: e.opts.Kubeconfig, ServiceURLs: map[string]string{}}
	if e.Cluster != nil {
		vars.KubeContext = e.Cluster.Context
	}
	if e.Kafka != nil {
		vars.KafkaBootstrap = e.Kafka.HostAddress
	}
	if u, err := e.H2HostURL(); err == nil {
		vars.H2JDBCURL = u
	}
	for _, s := range e.Config.Services {
		f, err := e.ForwardService(ctx, s.Name)
		if err != nil {
			stop()
			return testrun.Vars{}, func() {}, err
		}
		fwds = append(fwds, f)
		vars.ServiceURLs[s.Name] = "http://" + f.Addr()
	}
	return vars, stop, nil
}

// startTests runs the declared tests that depend on a service after each
// update of it while watching: a ✓/✗ line each, the output on failure (or
// as it comes with -v). It returns the function that stops them.
func (e *Env) startTests(ctx context.Context) (stop func()) {
	tests := e.Config.Tests
	if len(tests) == 0 {
		return func() {}
	}
	lg := e.opts.logger()
	vars, stopVars, err := e.TestVars(ctx)
	if err != nil {
		lg.Warnf("not running the declared tests: %v", err)
		return func() {}
	}
	var mu sync.Mutex
	outputs := map[string]*bytes.Buffer{}
	run := func(ctx context.Context, t *config.Test) testrun.Result {
		var buf bytes.Buffer
		var out io.Writer = &buf
		if lg.Verbose() {
			out = io.MultiWriter(&buf, log.NewPrefixWriter(lg.Writer(), "[test "+t.Name+"] "))
		}
		r := testrun.Run(ctx, t, vars, out)
		mu.Lock()
		outputs[t.Name] = &buf
		mu.Unlock()
		return r
	}
	report := func(r testrun.Result) {
		if r.Status == testrun.Cancelled && ctx.Err() != nil {
			return // stopped watching
		}
		e.opts.observer().TestResult(uiTest(r))
		lg.Infof("%s", testrun.FormatLine(r))
		if r.Status != testrun.Passed && !lg.Verbose() {
			mu.Lock()
			out := outputs[r.Name]
			mu.Unlock()
			if out != nil && out.Len() > 0 {
				lg.Infof("%s", testrun.Excerpt(out.String(), 40))
			}
		}
	}
	sched := testrun.NewScheduler(ctx, tests, run, report)
	e.loop.onUpdated = sched.Updated
	lg.Infof("%d declared tests run after each update of the services they depend on", len(tests))
	return func() {
		e.loop.onUpdated = nil
		sched.Close()
		stopVars()
	}
}
