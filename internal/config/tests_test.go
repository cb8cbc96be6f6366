package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadTests(t *testing.T) {
	cfg, err := Load("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata")
	if len(cfg.Tests) != 2 || cfg.Tests[0].Name != "smoke" || cfg.Tests[1].Name != "transfer-roundtrip" {
		t.Fatalf("tests = %+v, want smoke and transfer-roundtrip, sorted", cfg.Tests)
	}
	want := &Test{
		Name:     "transfer-roundtrip",
		Command:  []string{"go", "test", "-count=1", "./e2e"},
		Dir:      filepath.Join(abs, "account"),
		Services: []string{"account", "payments"},
		Timeout:  2 * time.Minute,
		Env:      map[string]string{"EXTRA": "value"},
		Pos:      Pos{File: "testdata/valid-full.yaml", Line: 48},
	}
	if got := cfg.Test("transfer-roundtrip"); !reflect.DeepEqual(got, want) {
		t.Errorf("transfer-roundtrip = %+v\nwant %+v", got, want)
	}
	smoke := cfg.Test("smoke")
	wantSmoke := &Test{
		Name:     "smoke",
		Command:  []string{`curl -fsS "$DEVENV_SERVICE_ACCOUNT_URL/health"`},
		Shell:    true,
		Dir:      abs,
		Services: []string{"account", "payments"},
		Timeout:  DefaultTestTimeout,
		Env:      map[string]string{},
		Pos:      Pos{File: "testdata/valid-full.yaml", Line: 54},
	}
	if !reflect.DeepEqual(smoke, wantSmoke) {
		t.Errorf("smoke = %+v\nwant %+v", smoke, wantSmoke)
	}
	if got := smoke.Argv(); !reflect.DeepEqual(got, []string{"sh", "-c", smoke.Command[0]}) {
		t.Errorf("smoke argv = %q", got)
	}
	if got := cfg.Test("transfer-roundtrip").Argv(); !reflect.DeepEqual(got, want.Command) {
		t.Errorf("argv = %q", got)
	}
	if cfg.Test("nope") != nil {
		t.Error("Test(nope) found something")
	}
	if cfg, err := Load("testdata/valid-minimal.yaml"); err != nil || cfg.Tests != nil {
		t.Errorf("minimal: tests %v err %v, want none", cfg.Tests, err)
	}
}

func TestLoadBadTests(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM scratch\n")
	write(t, dir, "notes.txt", "x\n")
	head := "services:\n  a:\n    context: .\n    port: 8080\ntests:\n  t:\n"
	tests := []struct {
		name, yaml, want string // want "" = loads
	}{
		{"minimal", "    command: [\"true\"]\n", ""},
		{"timeout without unit", "    command: x\n    timeout: 30\n", `:8: tests.t.timeout: 30 has no unit; write e.g. 30s or 30m`},
		{"timeout 0", "    command: x\n    timeout: 0\n", `:8: tests.t.timeout: 0 is not a usable timeout`},
		{"negative timeout", "    command: x\n    timeout: -1m\n", `:8: tests.t.timeout: -1m is not a usable timeout`},
		{"timeout list", "    command: x\n    timeout: [1m]\n", `:8: tests.t.timeout: expected a duration such as 90s or 2m; got a list`},
		{"dir is a file", "    command: x\n    dir: notes.txt\n", `:8: tests.t.dir: ` + filepath.Join(dir, "notes.txt") + ` is not a folder`},
		{"blank command", "    command: \"  \"\n", `:7: tests.t.command: empty command`},
		{"null command", "    command:\n", `:7: tests.t.command: empty command`},
		{"empty argv[0]", "    command: [\"\", x]\n", `:7: tests.t.command: empty command`},
		{"command mapping", "    command: {run: x}\n", `:7: tests.t.command: expected a list (argv) or a string (run with sh -c)`},
		{"command list of lists", "    command: [[x]]\n", `:7: tests.t.command[0]: expected a string; got a list`},
		{"no fields", "", `:6: tests.t.command: missing`},
		{"not a mapping", "    - x\n", `:7: tests.t: expected a mapping with fields command, dir, env, services, timeout`},
		{"empty services", "    command: x\n    services: []\n", `:8: tests.t.services: empty list`},
		{"services string", "    command: x\n    services: a\n", `:8: tests.t.services: expected a list of service names`},
		{"bad env name", "    command: x\n    env: {1X: y}\n", `:8: tests.t.env.1X: not a valid environment variable name`},
		{"name too long", "    command: x\n  " + strings.Repeat("x", 64) + ":\n    command: x\n", `:8: tests.` + strings.Repeat("x", 64) + `: "` + strings.Repeat("x", 64) + `" is not a valid test name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := write(t, dir, "devenv.yaml", head+tt.yaml)
			_, err := Load(f)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), f+tt.want) {
				t.Fatalf("err = %v\nwant %q", err, f+tt.want)
			}
		})
	}
	f := write(t, dir, "devenv.yaml", "services:\n  a:\n    context: .\n    port: 8080\ntests: [x]\n")
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), f+":5: tests: expected a mapping of test names to tests; got a list") {
		t.Errorf("tests: [x]: err = %v", err)
	}
	f = write(t, dir, "devenv.yaml", "services: {}\ntests: {t: {command: x, services: [a]}}\n")
	if _, err := Load(f); err == nil || !strings.Contains(err.Error(), f+`:2: tests.t.services[0]: unknown service "a"; there are no services`) {
		t.Errorf("no services: err = %v", err)
	}
}

// TestLoadTestsOverride: a second file merges into tests: like the other
// maps; its relative dir is relative to itself, the default dir stays with
// the file that declared the test, and a service it switches off leaves the
// tests' lists.
func TestLoadTestsOverride(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"account", "transfer", "local/e2e"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, s), "Dockerfile", "FROM scratch\n")
	}
	base := write(t, dir, "devenv.yaml", `services:
  account: {port: 8080}
  transfer: {port: 8081}
tests:
  roundtrip:
    command: [go, test, ./e2e]
    env: {A: "1", B: "2"}
    timeout: 1m
  smoke:
    command: make smoke
    services: [account, transfer]
`)
	over := write(t, filepath.Join(dir, "local"), "o.yaml", `services:
  transfer: {enabled: false}
tests:
  roundtrip:
    dir: ./e2e
    env: {B: "20"}
  extra:
    command: ["true"]
`)
	cfg, err := Load(base, over)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tt := range cfg.Tests {
		names = append(names, tt.Name)
	}
	if !reflect.DeepEqual(names, []string{"extra", "roundtrip", "smoke"}) {
		t.Fatalf("tests = %v", names)
	}
	r := cfg.Test("roundtrip")
	if r.Dir != filepath.Join(dir, "local", "e2e") || r.Timeout != time.Minute || !reflect.DeepEqual(r.Command, []string{"go", "test", "./e2e"}) {
		t.Errorf("roundtrip = %+v", r)
	}
	if !reflect.DeepEqual(r.Env, map[string]string{"A": "1", "B": "20"}) {
		t.Errorf("env = %v, want merged", r.Env)
	}
	if !reflect.DeepEqual(r.Services, []string{"account"}) || !reflect.DeepEqual(cfg.Test("smoke").Services, []string{"account"}) {
		t.Errorf("services = %v / %v, want the switched-off transfer left out", r.Services, cfg.Test("smoke").Services)
	}
	if e := cfg.Test("extra"); e.Dir != filepath.Join(dir, "local") || e.Pos.File != over {
		t.Errorf("extra dir %s pos %+v, want the override's folder", e.Dir, e.Pos)
	}
	if cfg.Test("smoke").Dir != dir {
		t.Errorf("smoke dir = %s, want %s", cfg.Test("smoke").Dir, dir)
	}
}

func TestSchemaHasTests(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatal(err)
	}
	tests := asMap(asMap(s["properties"])["tests"])
	if tests == nil {
		t.Fatal("no tests in the schema")
	}
	test := asMap(tests["additionalProperties"])
	for _, k := range []string{"command", "dir", "services", "timeout", "env"} {
		if _, ok := asMap(test["properties"])[k]; !ok {
			t.Errorf("tests.<name>.%s missing from the schema", k)
		}
	}
	if !reflect.DeepEqual(test["required"], []any{"command"}) || asMap(tests["propertyNames"])["pattern"] == nil {
		t.Errorf("tests schema: required %v, names %v", test["required"], tests["propertyNames"])
	}
}
