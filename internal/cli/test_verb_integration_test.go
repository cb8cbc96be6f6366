package cli

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/internal/build"
	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/internal/devenv"
	"github.com/devenv-tool/devenv/internal/dockerx"
	"github.com/devenv-tool/devenv/internal/testenv"
)

// TestIntegrationTestVerb runs devenv test in-process against one small
// project of its own (Kafka with a topic, the h2probe service of
// internal/devenv's tests), reusing its cluster across the subtests: a
// passing test exits 0; a failing one exits 1 and leaves the whole evidence
// folder and a JUnit report; a test over its timeout exits 4; a command
// after -- runs with the variables, and --down removes the environment; a
// config typo exits 2.
func TestIntegrationTestVerb(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	docker, err := dockerx.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	testenv.RequireImages(t, docker)

	tmp := t.TempDir()
	testenv.GoService(t, ctx, "../devenv/testdata/h2probe", filepath.Join(tmp, "probe"), "probe")
	name := testenv.Name("it-tv-")
	file := filepath.Join(tmp, "devenv.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`name: %s
kafka: {topics: [testverb]}
services:
  probe:
    context: ./probe
    port: 8080
tests:
  pass:
    command: |
      test -n "$DEVENV_KAFKA_BOOTSTRAP" || { echo "no DEVENV_KAFKA_BOOTSTRAP"; exit 1; }
      code=$(curl -sS -o /dev/null -w '%%{http_code}' "$DEVENV_SERVICE_PROBE_URL/nothing") || exit 1
      echo "the probe answered $code"
      test "$code" = 404
  fail: {command: 'echo "the probe is wrong"; exit 3'}
  slow: {command: 'echo start; sleep 60', timeout: 2s}
`, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(tmp, "kubeconfig")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		opts := devenv.DownOptions{Options: devenv.Options{Kubeconfig: kubeconfig}}
		if err := devenv.Down(context.Background(), cfg, opts); err != nil {
			t.Errorf("down: %v", err)
		}
		testenv.RemoveImages(t, docker, build.LabelProject+"="+name)
	})
	devenvTest := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, out, errOut := run(t, append([]string{"test", "-f", file, "--kubeconfig", kubeconfig}, args...)...)
		t.Logf("devenv test %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		return code, out, errOut
	}

	t.Run("pass", func(t *testing.T) {
		arts := filepath.Join(tmp, "artifacts-pass")
		code, out, _ := devenvTest(t, "--run", "pass", "-o", "json", "--artifacts", arts)
		var rep testReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("-o json: %v", err)
		}
		if code != ExitOK || rep.Result != "passed" || rep.ExitCode != 0 || len(rep.Tests) != 1 || rep.Tests[0].Status != "passed" {
			t.Errorf("exit %d, summary %+v", code, rep)
		}
		if _, err := os.Stat(arts); !os.IsNotExist(err) {
			t.Errorf("the evidence folder was written on success: %v", err)
		}
	})

	t.Run("fail", func(t *testing.T) {
		arts := filepath.Join(tmp, "artifacts-fail")
		junit := filepath.Join(tmp, "report.xml")
		code, out, _ := devenvTest(t, "--run", "fail", "--run", "pass", "--artifacts", arts, "--junit", junit)
		if code != ExitFailure {
			t.Errorf("exit %d, want %d", code, ExitFailure)
		}
		for _, want := range []string{"✗ test fail failed (exit 3,", "    the probe is wrong\n", "✓ test pass passed", "1 passed, 1 failed, 0 timed out (2 tests)"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
		if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); lines[len(lines)-1] != "artifacts in "+arts {
			t.Errorf("last line %q, want the evidence folder", lines[len(lines)-1])
		}

		var files []string
		err := filepath.WalkDir(arts, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(arts, p)
			files = append(files, rel)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if strings.HasSuffix(rel, ".error.txt") {
				t.Errorf("%s: %s", rel, b)
			}
			if len(strings.TrimSpace(string(b))) == 0 {
				t.Errorf("%s is empty", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("evidence: %q", files)
		for _, want := range []string{"events.txt", "status.json", "pods.json", "kafka.log", "topics.json", "tests/fail.log", "tests/pass.log", "summary.json"} {
			if !slices.Contains(files, want) {
				t.Errorf("the evidence lacks %s", want)
			}
		}
		if !slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, "pods/probe/") && strings.HasSuffix(f, ".log") }) {
			t.Error("the evidence has no pods/probe/*.log")
		}
		if b, _ := os.ReadFile(filepath.Join(arts, "tests", "fail.log")); !strings.Contains(string(b), "the probe is wrong") {
			t.Errorf("tests/fail.log = %q", b)
		}
		if b, _ := os.ReadFile(filepath.Join(arts, "tests", "pass.log")); !strings.Contains(string(b), "the probe answered 404") {
			t.Errorf("tests/pass.log = %q", b)
		}
		var rep testReport
		if b, err := os.ReadFile(filepath.Join(arts, "summary.json")); err != nil || json.Unmarshal(b, &rep) != nil ||
			rep.ExitCode != ExitFailure || len(rep.Tests) != 2 || rep.Tests[0].Name != "fail" || rep.Tests[0].ExitCode != 3 || rep.Tests[1].Status != "passed" {
			t.Errorf("summary.json: %+v (%v)", rep, err)
		}

		b, err := os.ReadFile(junit)
		if err != nil {
			t.Fatal(err)
		}
		var report struct {
			Suites []struct {
				Cases []struct {
					Name    string    `xml:"name,attr"`
					Failure *struct{} `xml:"failure"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(b, &report); err != nil {
			t.Fatalf("the JUnit report does not parse: %v\n%s", err, b)
		}
		if len(report.Suites) != 1 || len(report.Suites[0].Cases) != 2 {
			t.Fatalf("JUnit report %+v, want one suite of two test cases", report)
		}
		if c := report.Suites[0].Cases; c[0].Name != "fail" || c[0].Failure == nil || c[1].Name != "pass" || c[1].Failure != nil {
			t.Errorf("JUnit test cases %+v", c)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		code, out, _ := devenvTest(t, "--run", "slow", "--artifacts", filepath.Join(tmp, "artifacts-slow"))
		if code != ExitTimedOut || !strings.Contains(out, "✗ test slow timed out after 2s") {
			t.Errorf("exit %d, want %d and the timeout's line", code, ExitTimedOut)
		}
	})

	t.Run("command and down", func(t *testing.T) {
		code, out, _ := devenvTest(t, "--down", "--", "sh", "-c", `test -n "$DEVENV_SERVICE_PROBE_URL" && test "$DEVENV_NAMESPACE" = `+name)
		if code != ExitOK || !strings.Contains(out, "✓ test command passed") {
			t.Errorf("exit %d, want 0 and the command's line", code)
		}
		r, err := devenv.Status(ctx, cfg, devenv.Options{Kubeconfig: kubeconfig})
		if err != nil {
			t.Fatal(err)
		}
		if r.Cluster.Ready || len(r.External) != 1 || r.External[0].Running {
			t.Errorf("after --down: cluster ready %v, external %+v", r.Cluster.Ready, r.External)
		}
	})

	t.Run("config typo", func(t *testing.T) {
		typo := filepath.Join(tmp, "typo.yaml")
		if err := os.WriteFile(typo, []byte("name: "+name+"\nservices:\n  probe: {context: ./probe, prot: 8080}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := run(t, "test", "-f", typo, "--", "true")
		if code != ExitConfig || !strings.Contains(errOut, `did you mean "port"?`) {
			t.Errorf("exit %d, stderr %q; want %d", code, errOut, ExitConfig)
		}
	})
}
