package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/testrun"
)

func TestTestExitCode(t *testing.T) {
	pass := testrun.Result{Name: "a", Status: testrun.Passed}
	fail := testrun.Result{Name: "b", Status: testrun.Failed, ExitCode: 1}
	slow := testrun.Result{Name: "c", Status: testrun.TimedOut, ExitCode: -1}
	broken := testrun.Result{Name: "d", Status: testrun.Error, ExitCode: -1}
	cancelled := testrun.Result{Name: "e", Status: testrun.Cancelled, ExitCode: -1}
	tests := []struct {
		name        string
		results     []testrun.Result
		interrupted bool
		code        int
		result      string
	}{
		{"all passed", []testrun.Result{pass, pass}, false, ExitOK, "passed"},
		{"none", nil, false, ExitOK, "passed"},
		{"one failed", []testrun.Result{pass, fail}, false, ExitFailure, "failed"},
		{"could not start", []testrun.Result{broken}, false, ExitFailure, "failed"},
		{"one timed out", []testrun.Result{pass, slow}, false, ExitTimedOut, "timed out"},
		{"a failure wins over a timeout", []testrun.Result{slow, fail}, false, ExitFailure, "failed"},
		{"a failure wins over a timeout, either order", []testrun.Result{fail, slow}, false, ExitFailure, "failed"},
		{"interrupted", []testrun.Result{fail, cancelled}, true, ExitInterrupted, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, result := testExitCode(tt.results, tt.interrupted)
			if code != tt.code || result != tt.result {
				t.Errorf("testExitCode = %d %q, want %d %q", code, result, tt.code, tt.result)
			}
		})
	}
}

// TestTestSummary: summary.json and -o json share one shape, with stable
// field names, and the tests' logs go into tests/<name>.log.
func TestTestSummary(t *testing.T) {
	results := []testrun.Result{
		{Name: "ok", Status: testrun.Passed, ExitCode: 0, Duration: 1234 * time.Millisecond, Timeout: time.Minute},
		{Name: "bad", Status: testrun.Failed, ExitCode: 3, Duration: 250 * time.Millisecond, Err: errors.New("test bad failed: sh exited with 3")},
		{Name: "slow", Status: testrun.TimedOut, ExitCode: -1, Duration: 2 * time.Second, Timeout: 2 * time.Second, Err: errors.New("test slow timed out after 2s")},
	}
	code, result := testExitCode(results, false)
	rep := testReport{Project: "shop", Result: result, ExitCode: code, Artifacts: "out", JUnit: "report.xml", Tests: testEntries(results)}
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A log of an earlier run is not left beside this run's.
	if err := os.WriteFile(filepath.Join(dir, "tests", "old.log"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"ok": "PASS\n", "bad": "want 1, got 2\n"}
	if err := writeTestArtifacts(dir, rep, outputs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"project": "shop", "result": "failed", "exitCode": 1.0, "artifacts": "out", "junit": "report.xml",
		"tests": []any{
			map[string]any{"name": "ok", "status": "passed", "exitCode": 0.0, "durationSeconds": 1.234},
			map[string]any{"name": "bad", "status": "failed", "exitCode": 3.0, "durationSeconds": 0.25, "error": "test bad failed: sh exited with 3"},
			map[string]any{"name": "slow", "status": "timed out", "exitCode": -1.0, "durationSeconds": 2.0, "error": "test slow timed out after 2s"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary.json:\n%s\nwant %v", b, want)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "tests"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "bad.log ok.log slow.log" {
		t.Errorf("tests/ holds %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "tests", "bad.log")); string(b) != "want 1, got 2\n" {
		t.Errorf("bad.log = %q", b)
	}
	if got := testCounts(results); got != "1 passed, 1 failed, 1 timed out (3 tests)" {
		t.Errorf("testCounts = %q", got)
	}
}

func TestNotRun(t *testing.T) {
	rs := notRun([]*config.Test{{Name: "a", Timeout: time.Minute}}, errors.New("creating the cluster: boom"))
	if len(rs) != 1 || rs[0].Status != testrun.Error || rs[0].ExitCode != -1 ||
		rs[0].Err.Error() != "not run: the environment did not come up: creating the cluster: boom" {
		t.Errorf("notRun = %+v", rs)
	}
}

// TestRunTestsOutput runs real shell commands: the ✓/✗ lines, a failed
// test's output (indented) without -v, every line prefixed with -v.
func TestRunTestsOutput(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	tests := []*config.Test{
		{Name: "good", Command: []string{"echo fine"}, Shell: true, Dir: dir, Timeout: 10 * time.Second},
		{Name: "bad", Command: []string{"echo oops; printf 'no newline'; exit 3"}, Shell: true, Dir: dir, Timeout: 10 * time.Second},
		{Name: "vars", Command: []string{`test "$DEVENV_SERVICE_A_URL" = http://127.0.0.1:1`}, Shell: true, Dir: dir, Timeout: 10 * time.Second},
	}
	vars := testrun.Vars{ServiceURLs: map[string]string{"a": "http://127.0.0.1:1"}}

	var b bytes.Buffer
	results, outputs := runTests(context.Background(), tests, vars, &b, false)
	if len(results) != 3 || results[0].Status != testrun.Passed || results[1].ExitCode != 3 || results[2].Status != testrun.Passed {
		t.Fatalf("results %+v", results)
	}
	if outputs["bad"] != "oops\nno newline" {
		t.Errorf("outputs[bad] = %q", outputs["bad"])
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "✓ test good passed") || !strings.HasPrefix(lines[1], "✗ test bad failed (exit 3,") ||
		lines[2] != "    oops" || lines[3] != "    no newline" || !strings.HasPrefix(lines[4], "✓ test vars passed") {
		t.Errorf("output:\n%s", b.String())
	}

	b.Reset()
	runTests(context.Background(), tests[:2], vars, &b, true)
	lines = strings.Split(b.String(), "\n")
	if len(lines) != 6 || lines[0] != "[test good] fine" || !strings.HasPrefix(lines[1], "✓ test good") ||
		lines[2] != "[test bad] oops" || lines[3] != "[test bad] no newline" || !strings.HasPrefix(lines[4], "✗ test bad") {
		t.Errorf("-v output:\n%s", b.String())
	}

	// Cancelled: the running test stops, no other starts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	results, _ = runTests(ctx, tests, vars, &b, false)
	if len(results) != 0 {
		t.Errorf("after the cancel: %+v", results)
	}
}

func writeProject(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPickTests(t *testing.T) {
	f := writeProject(t, `name: x
services:
  a: {port: 1}
tests:
  zeta: {command: "true", timeout: 1m}
  alpha: {command: "true"}
  mid: {command: [echo, hi]}
`)
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ts []*config.Test) string {
		var n []string
		for _, t := range ts {
			n = append(n, t.Name+"="+t.Timeout.String())
		}
		return strings.Join(n, " ")
	}
	for _, c := range []struct {
		run        []string
		command    []string
		timeoutSet bool
		want       string
	}{
		{nil, nil, false, "alpha=5m0s mid=5m0s zeta=1m0s"},
		{[]string{"zeta", "alpha"}, nil, false, "alpha=5m0s zeta=1m0s"},
		{nil, nil, true, "alpha=30s mid=30s zeta=30s"},
		{nil, []string{"go", "test", "./e2e"}, false, "command=30s"},
	} {
		got, err := pickTests(cfg, &testFlags{run: c.run, testTimeout: 30 * time.Second}, c.command, c.timeoutSet)
		if err != nil || names(got) != c.want {
			t.Errorf("run %v command %v: %s, %v; want %s", c.run, c.command, names(got), err, c.want)
		}
	}
	if cfg.Test("zeta").Timeout != time.Minute {
		t.Error("--test-timeout changed the loaded config")
	}
	got, _ := pickTests(cfg, &testFlags{testTimeout: time.Minute}, []string{"make", "e2e"}, false)
	if c := got[0]; c.Dir != cfg.Dir || strings.Join(c.Argv(), " ") != "make e2e" || strings.Join(c.Services, ",") != "a" {
		t.Errorf("command test %+v", c)
	}
}

// TestTestVerbUsage: mistakes found before anything starts exit 2, with no
// Docker needed.
func TestTestVerbUsage(t *testing.T) {
	withTests := writeProject(t, "name: x\nservices:\n  a: {port: 1}\ntests:\n  smoke: {command: \"true\"}\n  e2e: {command: \"true\"}\n")
	noTests := writeProject(t, "name: x\nservices:\n  a: {port: 1}\n")
	typo := writeProject(t, "name: x\nservices:\n  a: {port: 1}\ntests:\n  smoke: {comand: \"true\"}\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"test", "-f", withTests, "--run", "smok"}, "--run smok: no such test in " + withTests + "; the tests are e2e, smoke"},
		{[]string{"test", "-f", noTests}, "declares no tests; add a tests: block, or give a command"},
		{[]string{"test", "-f", withTests, "--run", "smoke", "--", "true"}, "--run picks declared tests; it cannot be used with a command after --"},
		{[]string{"test", "-f", withTests, "--test-timeout", "0s", "--", "true"}, "--test-timeout 0s: it must be more than 0"},
		{[]string{"test", "-f", typo}, `tests.smoke.comand: unknown field; did you mean "command"?`},
		{[]string{"test", "-f", withTests, "-o", "xml"}, `--output "xml": expected text or json`},
	} {
		code, out, errOut := run(t, c.args...)
		if code != ExitConfig || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", c.args, code, out, errOut, ExitConfig, c.want)
		}
	}
}

func TestTestVerbHelpExitCodes(t *testing.T) {
	_, out, _ := run(t, "test", "--help")
	for _, want := range []string{"0    every test passed", "1    a test failed", "2    bad configuration", "3    the environment did not come up", "4    a test timed out", "130  interrupted"} {
		if !strings.Contains(out, want) {
			t.Errorf("devenv test --help lacks %q", want)
		}
	}
	_, out, _ = run(t, "--help")
	if !strings.Contains(out, "devenv test adds 3 (the\nenvironment did not come up) and 4 (a test timed out") {
		t.Errorf("devenv --help does not list devenv test's codes:\n%s", out)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:29092":                   "127.0.0.1:29092",
		"http://127.0.0.1:18080":            "http://127.0.0.1:18080",
		"jdbc:h2:tcp://127.0.0.1:1/mem:a;x": "'jdbc:h2:tcp://127.0.0.1:1/mem:a;x'",
		"":                                  "''",
		"it's $HOME `x`":                    `'it'\''s $HOME ` + "`x`'",
		"a b":                               "'a b'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestShellQuoteRoundTrip: sh reads back what shellQuote wrote.
func TestShellQuoteRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	value := "a 'b' \"c\" $d `e` \\f\n;g|h&i*"
	out, err := exec.Command("sh", "-c", "export V="+shellQuote(value)+`; printf %s "$V"`).Output()
	if err != nil || string(out) != value {
		t.Errorf("sh read %q (%v), want %q", out, err, value)
	}
}

func TestStatusEnv(t *testing.T) {
	cfg := &config.Config{Services: []*config.Service{
		{Name: "account", Port: 8080, Ports: []config.Forward{{Port: 8080, HostPort: 18080}}},
		{Name: "audit", Port: 7000, Ports: []config.Forward{{Port: 7000}}},
		{Name: "debug-me", Port: 8080, Ports: []config.Forward{{Port: 5005, HostPort: 15005}}},
		{Name: "transfer-money", Port: 8080},
	}}
	r := &devenv.Report{
		Namespace: "cosmos",
		Cluster:   devenv.ClusterStatus{Name: "cosmos", Context: "kind-cosmos", Ready: true},
		External: []devenv.ExternalStatus{
			{Component: "kafka", Running: true, HostAddress: "127.0.0.1:29092"},
			{Component: "h2", Running: true, HostAddress: "127.0.0.1:19092"},
		},
		Forwards: []devenv.ForwardStatus{
			{Service: "account", Port: 8080, HostPort: 18080, HostAddress: "127.0.0.1:18080", Forwarding: true},
			{Service: "audit", Port: 7000, Message: "not forwarding; the host port is chosen by the first devenv up that watches"},
			{Service: "debug-me", Port: 5005, HostPort: 15005, HostAddress: "127.0.0.1:15005", Forwarding: true},
		},
	}
	var out, errb bytes.Buffer
	printStatusEnv(&out, &errb, cfg, r, "/tmp/my kube")
	want := `export DEVENV_H2_JDBC_URL=jdbc:h2:tcp://127.0.0.1:19092
export DEVENV_KAFKA_BOOTSTRAP=127.0.0.1:29092
export DEVENV_KUBE_CONTEXT=kind-cosmos
export DEVENV_NAMESPACE=cosmos
export DEVENV_SERVICE_ACCOUNT_URL=http://127.0.0.1:18080
export KUBECONFIG='/tmp/my kube'
`
	if out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
	}
	wantErr := `no URL for service audit: not forwarding; the host port is chosen by the first devenv up that watches
no URL for service debug-me: its port 8080 is not among its ports:
no URL for service transfer-money: no ports: declared in devenv.yaml (devenv test forwards every service itself)
`
	if errb.String() != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errb.String(), wantErr)
	}

	// Nothing running: only the names devenv knows without asking.
	out.Reset()
	errb.Reset()
	printStatusEnv(&out, &errb, &config.Config{}, &devenv.Report{Namespace: "cosmos", Cluster: devenv.ClusterStatus{Context: "kind-cosmos"},
		External: []devenv.ExternalStatus{{Component: "kafka", HostAddress: "127.0.0.1:29092"}}}, "")
	if out.String() != "export DEVENV_NAMESPACE=cosmos\n" || errb.String() != "" {
		t.Errorf("nothing running: stdout %q, stderr %q", out.String(), errb.String())
	}
}
