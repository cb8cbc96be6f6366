package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/devenv-tool/devenv/internal/dirs"
	"github.com/devenv-tool/devenv/internal/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const rootConfig = "../../devenv.yaml"

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// testHashKey points DEVENV_STATE at a new folder holding the config hash
// key seed (padded to its size), so that a render with --show-secrets
// neither writes into the user's state folder nor varies between runs.
func testHashKey(t *testing.T, seed string) {
	t.Helper()
	dir := t.TempDir()
	key := []byte(fmt.Sprintf("%-32.32s", seed))
	if err := os.WriteFile(filepath.Join(dir, render.ConfigHashKeyName), key, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(dirs.StateEnv, dir)
}

// unsetEnv removes variables for the test and restores them afterwards.
func unsetEnv(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
}

func TestValidateOK(t *testing.T) {
	unsetEnv(t, "ACCOUNT_DB_USER", "ACCOUNT_DB_PASSWORD")
	code, out, errOut := run(t, "validate", "-f", rootConfig)
	want := rootConfig + ": ok (2 services, kafka, h2 memory)\n" +
		"  test transfer: sh ./transfer.sh in examples/cosmos/e2e (after any service; timeout 1m0s)\n"
	if code != ExitOK || out != want {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestValidateBadConfig(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(f, []byte("name: x\nservices:\n  account:\n    prot: 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "validate", "-f", f)
	if code != ExitConfig || out != "" {
		t.Errorf("exit %d, out %q", code, out)
	}
	for _, want := range []string{f + `:4: services.account.prot: unknown field; did you mean "port"?`, f + ":3: services.account.port: missing"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

func TestValidateBadReference(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "a", "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	f := filepath.Join(dir, "devenv.yaml")
	_ = os.WriteFile(f, []byte("name: x\nservices:\n  a:\n    port: 1\n    config: {b: \"${kafka.address}\"}\n"), 0o644)
	code, _, errOut := run(t, "validate", "-f", f)
	if code != ExitConfig || !strings.Contains(errOut, ":5: services.a.config.b: ${kafka.address} is used but Kafka is not configured") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestRenderGolden compares the cosmos example's rendering with the golden
// file (go test -run TestRenderGolden ./internal/cli -update rewrites it) and
// checks the seed chapter's key facts in it.
func TestRenderGolden(t *testing.T) {
	unsetEnv(t, "ACCOUNT_DB_USER", "ACCOUNT_DB_PASSWORD")
	testHashKey(t, "the golden files' config hash key")
	code, out, errOut := run(t, "render", "-f", rootConfig, "--show-secrets", "--external-ip", "kafka=172.18.0.250")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden := filepath.Join("testdata", "render-cosmos.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("render differs from %s (run with -update if the change is intended):\n%s", golden, out)
	}

	objs := map[string]map[string]any{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		md := o["metadata"].(map[string]any)
		if ns, _ := md["namespace"].(string); o["kind"] != "Namespace" && ns != "cosmos" {
			t.Errorf("%v %v in namespace %q", o["kind"], md["name"], ns)
		}
		objs[o["kind"].(string)+"/"+md["name"].(string)] = o
	}
	get := func(key string, path ...string) string {
		t.Helper()
		var v any = objs[key]
		for _, p := range path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	checks := []struct{ got, want string }{
		{get("Namespace/cosmos", "metadata", "name"), `"cosmos"`},
		{get("ConfigMap/account", "data", "datasource.url"), `"jdbc:h2:mem:account"`},
		{get("ConfigMap/account", "data", "datasource.driver.class.name"), `"org.h2.Driver"`},
		{get("ConfigMap/account", "data", "spring.profile"), `"kubernetes"`},
		{get("ConfigMap/account", "data", "broker"), `"kafka:9092"`},
		{get("Secret/account", "data"), `{"datasource.password":"dXNycHc=","datasource.username":"dXNybm0="}`},
		{get("Secret/account", "metadata", "annotations", "devenv.dev/default-secrets"), `"datasource.password,datasource.username"`},
		{get("Service/account", "spec", "ports"), `[{"name":"http","port":8080,"protocol":"TCP","targetPort":8080}]`},
		{get("Service/account", "spec", "selector"), `{"app":"account"}`},
		{get("Service/kafka", "spec", "selector"), `null`},
		{get("Service/kafka", "spec", "ports"), `[{"port":9092,"protocol":"TCP","targetPort":9092}]`},
		{get("EndpointSlice/kafka", "endpoints"), `[{"addresses":["172.18.0.250"],"conditions":{"ready":true}}]`},
		{get("EndpointSlice/kafka", "ports"), `[{"name":"","port":9092,"protocol":"TCP"}]`},
		{get("EndpointSlice/kafka", "metadata", "labels", "kubernetes.io/service-name"), `"kafka"`},
		{get("Endpoints/kafka", "subsets"), `[{"addresses":[{"ip":"172.18.0.250"}],"ports":[{"port":9092}]}]`},
		{get("Endpoints/kafka", "metadata", "labels", "endpointslice.kubernetes.io/skip-mirror"), `"true"`},
		{get("ConfigMap/transfermoney", "data", "ACCOUNT_URL"), `"http://account:8080"`},
		{get("Deployment/account", "spec", "template", "spec", "terminationGracePeriodSeconds"), `2`},
		{get("Deployment/account", "spec", "template", "spec", "enableServiceLinks"), `false`},
		{get("Deployment/account", "spec", "selector"), `{"matchLabels":{"app":"account"}}`},
		{get("Deployment/account", "spec", "template", "metadata", "labels", "app.kubernetes.io/name"), `"account"`},
		{get("Service/kafka", "metadata", "labels", "app.kubernetes.io/part-of"), `"cosmos"`},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %s, want %s", i, c.got, c.want)
		}
	}
	if len(objs) != 11 {
		t.Errorf("%d objects, want 11: %v", len(objs), keys(objs))
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRenderHidesSecrets(t *testing.T) {
	t.Setenv("ACCOUNT_DB_USER", "alice-from-env")
	t.Setenv("ACCOUNT_DB_PASSWORD", "p4ssw0rd-from-env")
	code, out, errOut := run(t, "render", "-f", rootConfig, "-v", "--docker=false")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"alice-from-env", "p4ssw0rd-from-env", "YWxpY2UtZnJvbS1lbnY=", "cDRzc3cwcmQtZnJvbS1lbnY=", "usrpw", "dXNycHc="} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("output contains the secret %q", secret)
		}
	}
	if !strings.Contains(out, "KioqKio=") || !strings.HasPrefix(out, "# kafka: address not known here") {
		t.Errorf("no mask or no placeholder comment:\n%s", out[:min(len(out), 300)])
	}
	if !strings.Contains(out, "- 192.0.2.1\n") || strings.Contains(out, "0.0.0.0") {
		t.Error("the placeholder address is not 192.0.2.1, which the API server accepts in endpoints")
	}
	if strings.Contains(out, "devenv.dev/default-secrets") {
		t.Error("values from the environment are marked as defaults")
	}
	// With --show-secrets the environment's values are used.
	testHashKey(t, "TestRenderHidesSecrets's hash key")
	_, shown, _ := run(t, "render", "-f", rootConfig, "--show-secrets")
	if !strings.Contains(shown, "cDRzc3cwcmQtZnJvbS1lbnY=") {
		t.Error("--show-secrets does not show the value from the environment")
	}
}

func TestRenderBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--external-ip", "kafka"},
		{"--external-ip", "kafka=not-an-ip"},
		{"--external-ip", "redis=1.2.3.4"},
		{"--image", "nosuch=x:1"},
	} {
		code, _, errOut := run(t, append([]string{"render", "-f", rootConfig}, args...)...)
		if code != ExitConfig || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestSchemaVerb(t *testing.T) {
	code, out, _ := run(t, "schema")
	var s map[string]any
	if code != ExitOK || json.Unmarshal([]byte(out), &s) != nil || s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("exit %d, schema %.200s", code, out)
	}
}

func TestVersionVerb(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "devenv ") {
		t.Errorf("exit %d, out %q", code, out)
	}
	code, out, _ = run(t, "version", "-o", "json")
	var v versionInfo
	if code != ExitOK || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Errorf("exit %d, out %q", code, out)
	}
	if code, _, _ := run(t, "version", "-o", "xml"); code != ExitConfig {
		t.Errorf("-o xml: exit %d, want %d", code, ExitConfig)
	}
}

func TestHelpHasExamples(t *testing.T) {
	// Every verb, so a flag that clashes with the global ones (-f, -v) fails here.
	root := newRootCmd(&globals{})
	var verbs [][]string
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.HasSubCommands() {
			for _, sub := range c.Commands() {
				verbs = append(verbs, []string{c.Name(), sub.Name()})
			}
			continue
		}
		verbs = append(verbs, []string{c.Name()})
	}
	if len(verbs) < 12 {
		t.Fatalf("found only %d verbs: %v", len(verbs), verbs)
	}
	for _, v := range verbs {
		verb := strings.Join(v, " ")
		code, out, _ := run(t, append(v, "--help")...)
		if code != ExitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "devenv "+verb) {
			t.Errorf("%s --help: exit %d, no example:\n%s", verb, code, out)
		}
	}
}

func TestInterruptedExitCode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if Ctrl-C came before the work was done
	var out, errb bytes.Buffer
	// status needs Docker; with the context already cancelled it stops at once.
	code := Run(ctx, []string{"status", "-f", rootConfig}, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != ExitInterrupted || !strings.Contains(errb.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q; want %d and a word about the interruption", code, errb.String(), ExitInterrupted)
	}
}

// TestUsageErrors: unknown commands, extra or missing arguments and bad flags
// exit 2 on every verb, and the message says where the usage is.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"bogus"}, []string{`unknown command "bogus" for "devenv"`, "Run 'devenv --help' for usage."}},
		{[]string{"stauts"}, []string{`unknown command "stauts"`, "did you mean status?"}},
		{[]string{"status", "extra"}, []string{`unknown command "extra" for "devenv status"`, "Run 'devenv status --help' for usage."}},
		{[]string{"version", "extra"}, []string{"Run 'devenv version --help' for usage."}},
		{[]string{"schema", "extra"}, []string{"Run 'devenv schema --help' for usage."}},
		{[]string{"up", "extra"}, []string{"Run 'devenv up --help' for usage."}},
		{[]string{"up", "--ui-port", "0"}, []string{"--ui-port 0: want a port from 1 to 65535"}},
		{[]string{"test", "extra"}, []string{`unexpected argument "extra"; put a command to run after --`, "Run 'devenv test --help' for usage."}},
		{[]string{"test", "extra", "--", "true"}, []string{`unexpected argument "extra"`}},
		{[]string{"images", "bogus"}, []string{`unknown command "bogus" for "devenv images"`, "Run 'devenv images --help' for usage."}},
		{[]string{"images", "list", "extra"}, []string{"Run 'devenv images list --help' for usage."}},
		{[]string{"images", "save"}, []string{"accepts 1 arg(s), received 0", "Run 'devenv images save --help' for usage."}},
		{[]string{"images", "load", "a", "b"}, []string{"accepts 1 arg(s), received 2"}},
		{[]string{"completion", "bogus"}, []string{`unknown command "bogus" for "devenv completion"`}},
		{[]string{"completion", "bash", "extra"}, []string{"Run 'devenv completion bash --help' for usage."}},
		{[]string{"status", "--bogus"}, []string{"unknown flag: --bogus", "Run 'devenv status --help' for usage."}},
		{[]string{"--bogus"}, []string{"unknown flag: --bogus", "Run 'devenv --help' for usage."}},
	} {
		code, out, errOut := run(t, c.args...)
		if code != ExitConfig || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want %d and no output", c.args, code, out, ExitConfig)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut, w)
			}
		}
	}
}

// TestGroupsShowHelp: a command that only groups others, called alone, prints
// its help and exits 0.
func TestGroupsShowHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"images"}, {"-v"}} {
		code, out, errOut := run(t, args...)
		if code != ExitOK || !strings.Contains(out, "Available Commands:") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %.100q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestOutputFlag: every verb with an output format spells it -o/--output,
// documents json in its --help, and refuses an unknown format with exit 2
// before doing anything (no Docker, no cluster needed).
func TestOutputFlag(t *testing.T) {
	root := newRootCmd(&globals{})
	var withOutput []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup("output"); f != nil {
			withOutput = append(withOutput, strings.TrimPrefix(c.CommandPath(), "devenv "))
			if f.Shorthand != "o" || !strings.Contains(f.Usage, "json") {
				t.Errorf("%s: --output is -%s %q; want -o with json among the formats", c.CommandPath(), f.Shorthand, f.Usage)
			}
			if !strings.Contains(c.Long, "-o json (--output json)") {
				t.Errorf("%s: --help does not describe -o json", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if got := strings.Join(withOutput, ","); got != "bundle,images list,images load,init,status,test,version" {
		t.Errorf("verbs with -o: %s", got)
	}
	fileArg := map[string][]string{"bundle": {"room.tar"}, "images load": {"room.tar"}} // verbs that need one
	for _, verb := range withOutput {
		for _, spelling := range []string{"-o", "--output"} {
			args := append(strings.Fields(verb), fileArg[verb]...)
			args = append(args, spelling, "xml", "-f", rootConfig)
			code, out, errOut := run(t, args...)
			if code != ExitConfig || out != "" || !strings.Contains(errOut, `--output "xml": expected`) || !strings.Contains(errOut, "--help' for usage") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
	}
	if got := complete(t, "status", "-o", ""); strings.Join(got, " ") != "text json env" {
		t.Errorf("completion of -o: %v", got)
	}
}
