package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/testrun"
	"github.com/devenv-tool/devenv/kafka"
)

func init() { commands = append(commands, newTestCmd) }

var testFormats = []string{"text", "json"}

// DefaultArtifactsDir is where devenv test writes its evidence folder when
// --artifacts is not given (relative to the current folder).
const DefaultArtifactsDir = "devenv-artifacts"

// commandTestName names the test of `devenv test -- CMD ARGS...`.
const commandTestName = "command"

// failedOutputLines is how many of a failed test's last output lines devenv
// test prints (without -v); the whole output is in the artifacts.
const failedOutputLines = 100

// downTimeout bounds --down's teardown, which runs with a context of its
// own so that it happens after Ctrl-C too.
const downTimeout = 5 * time.Minute

type testFlags struct {
	envFlags
	noLive          bool
	retain          bool
	rolloutTimeout  time.Duration
	run             []string
	testTimeout     time.Duration
	artifacts       string
	artifactsAlways bool
	junit           string
	down            bool
	output          string
}

func newTestCmd(g *globals) *cobra.Command {
	f := &testFlags{}
	cmd := &cobra.Command{
		Use:   "test [flags] [-- COMMAND [ARGS...]]",
		Short: "Bring the environment up, run the declared tests against it, and exit with their result (CI)",
		Long: `Bring the environment up as devenv up --no-watch does, then run every test
declared under tests: in devenv.yaml, one after the other in name order, on
the host. --run NAME (repeatable) picks some. With -- COMMAND ARGS... devenv
runs that one command instead, as a test named "command" in the config file's
folder (timeout 5m, --test-timeout to change it; --test-timeout also
overrides the declared tests' timeouts).

Each test gets the environment's addresses as variables:
DEVENV_SERVICE_<NAME>_URL (every service's port forwarded to 127.0.0.1 for the
run), DEVENV_KAFKA_BOOTSTRAP, DEVENV_H2_JDBC_URL (h2 server mode),
DEVENV_NAMESPACE, DEVENV_KUBE_CONTEXT and, with --kubeconfig, KUBECONFIG.
A test runs in a process group of its own: its timeout, or Ctrl-C, stops
every process it started.

devenv prints a ✓/✗ line per test, the output of a test that did not pass
(all output as it comes with -v), and a summary line.

Exit codes:
  0    every test passed
  1    a test failed (or could not start); this wins over a timeout
  2    bad configuration or usage (an unknown --run name, nothing to run)
  3    the environment did not come up (no test ran)
  4    a test timed out, and none failed
  130  interrupted (Ctrl-C): the running test is stopped

On any failure (exit 1, 3 or 4) devenv writes an evidence folder (--artifacts,
default ./devenv-artifacts; --artifacts-always writes it on success too):
status.json, events.txt, pods.json, pods/<service>/*.log, kafka.log, h2.log,
topics.json (see devenv status), tests/<name>.log (each test's output) and
summary.json (the -o json summary). The last line says where it is.
--junit FILE writes a JUnit XML report on success and failure. --down tears
the environment down at the end, whatever the result.

With -o json (--output json) stdout holds only the summary, one JSON object
with these fields: project, result (passed, failed, timed out, not up,
interrupted), exitCode, error (why the environment did not come up),
artifacts, junit, tests[]{name,status (passed, failed, timed out, cancelled,
error),exitCode (-1: none),durationSeconds,error}; the lines go to stderr.`,
		Example: `  devenv test                                   # every declared test
  devenv test --run transfer -v                 # one test, its output as it comes
  devenv test --junit report.xml --artifacts artifacts --down   # in CI
  devenv test -- go test ./e2e                  # one command instead of the declared tests
  devenv test -o json | jq -r '.tests[] | select(.status != "passed") | .name'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); len(args) > 0 && dash != 0 {
				return fmt.Errorf("unexpected argument %q; put a command to run after --, e.g. devenv test -- go test ./e2e", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(cmd, f.output, testFormats...); err != nil {
				return err
			}
			if len(args) > 0 && len(f.run) > 0 {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--run picks declared tests; it cannot be used with a command after --")}
			}
			if cmd.Flags().Changed("test-timeout") && f.testTimeout <= 0 {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--test-timeout %s: it must be more than 0", f.testTimeout)}
			}
			if f.artifacts == "" {
				f.artifacts = DefaultArtifactsDir
			}
			return runTest(cmd.Context(), g, f, args, cmd.Flags().Changed("test-timeout"))
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&f.noLive, "no-live", false, "build images without the live-update supervisor (as devenv up --no-live)")
	fl.BoolVar(&f.retain, "retain", false, "keep a cluster whose creation failed, for debugging")
	fl.DurationVar(&f.rolloutTimeout, "rollout-timeout", devenv.DefaultRolloutTimeout, "how long to wait for each service to become ready")
	fl.StringArrayVar(&f.run, "run", nil, "run only the declared test NAME (repeatable)")
	fl.DurationVar(&f.testTimeout, "test-timeout", config.DefaultTestTimeout, "timeout of the command after --; when given, also of every declared test")
	fl.StringVar(&f.artifacts, "artifacts", DefaultArtifactsDir, "folder for the evidence written on failure")
	fl.BoolVar(&f.artifactsAlways, "artifacts-always", false, "write the evidence folder on success too")
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to FILE")
	fl.BoolVar(&f.down, "down", false, "tear the environment down at the end, whatever the result")
	_ = cmd.MarkFlagFilename("junit", "xml")
	_ = cmd.MarkFlagDirname("artifacts")
	_ = cmd.RegisterFlagCompletionFunc("run", completeTests(g))
	addOutputFlag(cmd, &f.output, testFormats...)
	return cmd
}

// completeTests completes --run with the declared tests of the config files.
func completeTests(g *globals) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		cfg, err := config.Load(g.configFiles()...)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, t := range cfg.Tests {
			names = append(names, t.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// pickTests returns the tests to run: the command after -- as a test named
// "command" in the config file's folder, or the declared tests named by
// --run (all of them without it), in name order. timeoutSet says whether
// --test-timeout was given, to override the declared tests' timeouts.
func pickTests(cfg *config.Config, f *testFlags, command []string, timeoutSet bool) ([]*config.Test, error) {
	if len(command) > 0 {
		return []*config.Test{{Name: commandTestName, Command: command, Dir: cfg.Dir,
			Services: serviceNames(cfg), Timeout: f.testTimeout, Env: map[string]string{}}}, nil
	}
	if len(cfg.Tests) == 0 {
		return nil, fmt.Errorf("%w: %s declares no tests; add a tests: block, or give a command: devenv test -- go test ./e2e", ErrUsage, cfg.Files[0])
	}
	var names []string
	for _, t := range cfg.Tests {
		names = append(names, t.Name)
	}
	picked := cfg.Tests
	if len(f.run) > 0 {
		want := map[string]bool{}
		for _, n := range f.run {
			if cfg.Test(n) == nil {
				return nil, fmt.Errorf("%w: --run %s: no such test in %s; the tests are %s", ErrUsage, n, cfg.Files[0], strings.Join(names, ", "))
			}
			want[n] = true
		}
		picked = nil
		for _, t := range cfg.Tests {
			if want[t.Name] {
				picked = append(picked, t)
			}
		}
	}
	out := make([]*config.Test, len(picked))
	for i, t := range picked {
		c := *t
		if timeoutSet {
			c.Timeout = f.testTimeout
		}
		out[i] = &c
	}
	return out, nil
}

func serviceNames(cfg *config.Config) []string {
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	return names
}

// Result words of the test summary.
const (
	resultPassed      = "passed"
	resultFailed      = "failed"
	resultTimedOut    = "timed out"
	resultNotUp       = "not up"
	resultInterrupted = "interrupted"
)

// testExitCode is the exit code of a run whose environment came up:
// 130 when interrupted, else 1 when a test failed or could not start (a
// failure wins over a timeout: it is a wrong answer, a timeout may be a
// slow machine), else 4 when one timed out, else 0.
func testExitCode(results []testrun.Result, interrupted bool) (int, string) {
	if interrupted {
		return ExitInterrupted, resultInterrupted
	}
	timedOut := false
	for _, r := range results {
		switch r.Status {
		case testrun.Passed:
		case testrun.TimedOut:
			timedOut = true
		default: // failed, error, and cancelled without an interruption
			return ExitFailure, resultFailed
		}
	}
	if timedOut {
		return ExitTimedOut, resultTimedOut
	}
	return ExitOK, resultPassed
}

// testReport is the summary of a devenv test run: what -o json prints and
// summary.json holds. Its field names are stable.
type testReport struct {
	Project   string      `json:"project"`
	Result    string      `json:"result"` // passed, failed, timed out, not up, interrupted
	ExitCode  int         `json:"exitCode"`
	Error     string      `json:"error,omitempty"` // why the environment did not come up
	Artifacts string      `json:"artifacts,omitempty"`
	JUnit     string      `json:"junit,omitempty"`
	Tests     []testEntry `json:"tests"`
}

// testEntry is one test in the summary.
type testEntry struct {
	Name            string  `json:"name"`
	Status          string  `json:"status"`   // passed, failed, timed out, cancelled, error
	ExitCode        int     `json:"exitCode"` // -1 when it has none
	DurationSeconds float64 `json:"durationSeconds"`
	Error           string  `json:"error,omitempty"`
}

func testEntries(results []testrun.Result) []testEntry {
	out := make([]testEntry, 0, len(results))
	for _, r := range results {
		e := testEntry{Name: r.Name, Status: string(r.Status), ExitCode: r.ExitCode,
			DurationSeconds: float64(r.Duration.Milliseconds()) / 1000}
		if r.Err != nil {
			e.Error = r.Err.Error()
		}
		out = append(out, e)
	}
	return out
}

// notRun is the result of each test when the environment did not come up.
func notRun(tests []*config.Test, why error) []testrun.Result {
	out := make([]testrun.Result, len(tests))
	for i, t := range tests {
		out[i] = testrun.Result{Name: t.Name, Status: testrun.Error, ExitCode: -1, Timeout: t.Timeout,
			Err: fmt.Errorf("not run: the environment did not come up: %w", why)}
	}
	return out
}

// runTests runs tests one after the other, writing a line per test to w
// (the output of one that did not pass after it, or, verbose, every line
// as it comes). It stops starting tests once ctx is done.
func runTests(ctx context.Context, tests []*config.Test, vars testrun.Vars, w io.Writer, verbose bool) ([]testrun.Result, map[string]string) {
	var results []testrun.Result
	outputs := map[string]string{}
	for _, t := range tests {
		if ctx.Err() != nil {
			break
		}
		var buf bytes.Buffer
		var out io.Writer = &buf
		var pw *log.PrefixWriter
		if verbose {
			pw = log.NewPrefixWriter(w, "[test "+t.Name+"] ")
			out = io.MultiWriter(&buf, pw)
		}
		r := testrun.Run(ctx, t, vars, out)
		if pw != nil {
			pw.Flush()
		}
		outputs[t.Name] = buf.String()
		results = append(results, r)
		fmt.Fprintln(w, testrun.FormatLine(r))
		if r.Status != testrun.Passed && !verbose && buf.Len() > 0 {
			fmt.Fprintln(w, testrun.Excerpt(buf.String(), failedOutputLines))
		}
	}
	return results, outputs
}

// runTest is devenv test: up, the tests, the reports, the evidence, down.
func runTest(ctx context.Context, g *globals, f *testFlags, command []string, timeoutSet bool) error {
	cfg, err := config.Load(g.configFiles()...)
	if err != nil {
		return err
	}
	tests, err := pickTests(cfg, f, command, timeoutSet)
	if err != nil {
		return err
	}
	if f.kubeconfig != "" {
		// The tests get it as KUBECONFIG and run in folders of their own.
		if abs, err := filepath.Abs(f.kubeconfig); err == nil {
			f.kubeconfig = abs
		}
	}
	lg := g.logger()
	human := g.streams.Out // the lines; stdout holds only the summary with -o json
	if f.output == "json" {
		human = g.streams.Err
	}
	opts := devenv.Options{Kubeconfig: f.kubeconfig, Retain: f.retain, RolloutTimeout: f.rolloutTimeout,
		Log: lg, PrivilegedShim: true, Live: !f.noLive}
	if g.verbose {
		opts.BuildOutput = g.streams.Err
	}

	rep := testReport{Project: cfg.Name}
	var results []testrun.Result
	outputs := map[string]string{}
	start := time.Now()
	env, upErr := upForTests(ctx, cfg, opts)
	if upErr == nil {
		_ = env.Share(ctx) // others may attach while the tests run; a failure only keeps them out
		vars, stop, err := env.TestVars(ctx)
		if err != nil {
			upErr = fmt.Errorf("forwarding the services' ports for the tests: %w", err)
		} else {
			lg.Infof("✓ %s is ready in %s; running %s", cfg.Name, time.Since(start).Round(100*time.Millisecond), plural(len(tests), "test"))
			results, outputs = runTests(ctx, tests, vars, human, g.verbose)
			stop()
		}
	}
	switch {
	case upErr != nil && ctx.Err() != nil:
		rep.ExitCode, rep.Result = ExitInterrupted, resultInterrupted
	case upErr != nil && (errors.Is(upErr, ErrUsage) || isConfigError(upErr)):
		if env != nil {
			env.Close()
		}
		return upErr
	case upErr != nil:
		rep.ExitCode, rep.Result, rep.Error = ExitNotUp, resultNotUp, upErr.Error()
		results = notRun(tests, upErr)
		fmt.Fprintf(human, "✗ the environment did not come up: %v\n", upErr)
	default:
		rep.ExitCode, rep.Result = testExitCode(results, ctx.Err() != nil)
	}
	rep.Tests = testEntries(results)
	if rep.ExitCode != ExitInterrupted {
		fmt.Fprintln(human, testCounts(results))
	}

	if f.junit != "" {
		if err := writeJUnitFile(f.junit, cfg.Name, results, outputs); err != nil {
			lg.Warnf("%v", err)
		} else {
			rep.JUnit = f.junit
		}
	}
	failed := rep.ExitCode == ExitFailure || rep.ExitCode == ExitNotUp || rep.ExitCode == ExitTimedOut
	if failed || (f.artifactsAlways && rep.ExitCode == ExitOK) {
		rep.Artifacts = f.artifacts
		lg.Infof("collecting the evidence into %s", f.artifacts)
		if _, err := devenv.CollectArtifacts(ctx, cfg, opts, f.artifacts); err != nil {
			lg.Warnf("some evidence is missing (each part's reason is in its .error.txt file): %v", err)
		}
		if err := writeTestArtifacts(f.artifacts, rep, outputs); err != nil {
			lg.Warnf("%v", err)
		}
	}
	if env != nil {
		env.Close() // before Down, which takes the project's lock exclusively
	}
	if f.down {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), downTimeout)
		err := devenv.Down(dctx, cfg, devenv.DownOptions{Options: devenv.Options{Kubeconfig: f.kubeconfig, Log: lg}})
		cancel()
		if err != nil {
			lg.Warnf("--down: %v", err)
		}
	}
	if f.output == "json" {
		enc := json.NewEncoder(g.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if rep.Artifacts != "" {
		fmt.Fprintf(human, "artifacts in %s\n", rep.Artifacts)
	}
	if rep.ExitCode != ExitOK {
		return exitError{code: rep.ExitCode}
	}
	return nil
}

// upForTests is Up as devenv up --no-watch runs it, with the process-wide
// setting of the Kafka container's library that the CLI makes.
func upForTests(ctx context.Context, cfg *config.Config, opts devenv.Options) (*devenv.Env, error) {
	if cfg.Kafka != nil {
		if err := kafka.ConfigureTestcontainers(); err != nil {
			return nil, err
		}
	}
	return devenv.Up(ctx, cfg, opts)
}

// testCounts is the summary line, e.g. "2 passed, 1 failed, 0 timed out (3 tests)".
func testCounts(results []testrun.Result) string {
	var passed, failed, timedOut, other int
	for _, r := range results {
		switch r.Status {
		case testrun.Passed:
			passed++
		case testrun.Failed:
			failed++
		case testrun.TimedOut:
			timedOut++
		default:
			other++
		}
	}
	s := fmt.Sprintf("%d passed, %d failed, %d timed out", passed, failed, timedOut)
	if other > 0 {
		s += fmt.Sprintf(", %d not run or cancelled", other)
	}
	return s + " (" + plural(len(results), "test") + ")"
}

// writeJUnitFile writes the JUnit report to path.
func writeJUnitFile(path, suite string, results []testrun.Result, outputs map[string]string) error {
	var buf bytes.Buffer
	if err := testrun.WriteJUnit(&buf, suite, results, outputs); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	return nil
}

// writeTestArtifacts adds tests/<name>.log (each test's output; a
// tests/ folder of an earlier run is replaced) and summary.json to dir.
func writeTestArtifacts(dir string, rep testReport, outputs map[string]string) error {
	tdir := filepath.Join(dir, "tests")
	if err := os.RemoveAll(tdir); err != nil {
		return fmt.Errorf("writing the tests' logs: %w", err)
	}
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return fmt.Errorf("writing the tests' logs: %w", err)
	}
	var errs []error
	for _, t := range rep.Tests {
		// Test names are DNS labels (or "command"): safe file names.
		if err := os.WriteFile(filepath.Join(tdir, t.Name+".log"), []byte(outputs[t.Name]), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("writing the log of test %s: %w", t.Name, err))
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("writing summary.json: %w", err))
	}
	return errors.Join(errs...)
}
