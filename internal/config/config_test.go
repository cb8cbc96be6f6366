package config

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestLoadValidFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid-*.yaml")
	if len(files) < 3 {
		t.Fatalf("expected valid testdata files, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

func TestLoadInvalidFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) < 10 {
		t.Fatalf("expected invalid testdata files, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantComment(t, f)
			_, err := Load(f)
			if err == nil {
				t.Fatalf("Load succeeded; want error containing %q", want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant substring:\n%s", err, want)
			}
		})
	}
}

func wantComment(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	want, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok || want == "" {
		t.Fatalf("%s: first line must be '# want: <substring>'", file)
	}
	return want
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata")
	if cfg.Name != "testdata" || cfg.Namespace != "testdata" || cfg.Cluster.Name != "testdata" {
		t.Errorf("name/namespace/cluster = %q/%q/%q, want the folder name testdata", cfg.Name, cfg.Namespace, cfg.Cluster.Name)
	}
	if cfg.Cluster.Image == "" || strings.Contains(cfg.Cluster.Image, "@") || !strings.HasPrefix(cfg.Cluster.Image, "kindest/node:") {
		t.Errorf("cluster image = %q, want kind's default without digest", cfg.Cluster.Image)
	}
	if cfg.Kafka != nil {
		t.Errorf("kafka = %+v, want nil when absent", cfg.Kafka)
	}
	if cfg.H2.Mode != H2Memory {
		t.Errorf("h2 mode = %q, want memory", cfg.H2.Mode)
	}
	s := cfg.Service("account")
	if s == nil {
		t.Fatal("service account missing")
	}
	if s.Context != filepath.Join(abs, "account") || s.Dockerfile != filepath.Join(abs, "account", "Dockerfile") {
		t.Errorf("context/dockerfile = %s %s", s.Context, s.Dockerfile)
	}
	if s.Replicas != 1 || s.Port != 8080 || s.ProbePath != "" {
		t.Errorf("replicas/port/probe = %d/%d/%q", s.Replicas, s.Port, s.ProbePath)
	}
	if s.Pos.Line != 2 || s.Pos.File != "testdata/valid-minimal.yaml" {
		t.Errorf("pos = %+v", s.Pos)
	}
}

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	if k == nil || k.Service != "broker" || k.HostPort != 29092 || k.Endpoints != EndpointsClassic || k.Address() != "broker:9092" {
		t.Fatalf("kafka = %+v", k)
	}
	wantTopics := []Topic{
		{Name: "transfers", Partitions: 1, Config: map[string]string{}, Pos: Pos{"testdata/valid-full.yaml", 14}},
		{Name: "audit", Partitions: 3, Config: map[string]string{"retention.ms": "60000"}, Pos: Pos{"testdata/valid-full.yaml", 14}},
	}
	if !reflect.DeepEqual(k.Topics, wantTopics) {
		t.Errorf("topics = %+v\nwant %+v", k.Topics, wantTopics)
	}
	if k.Resources != (Resources{CPU: "1", Memory: "1Gi"}) {
		t.Errorf("kafka resources = %+v", k.Resources)
	}
	if cfg.H2.Mode != H2Server || cfg.Namespace != "cosmos-dev" {
		t.Errorf("h2/namespace = %+v %s", cfg.H2, cfg.Namespace)
	}
	if names := []string{cfg.Services[0].Name, cfg.Services[1].Name}; names[0] != "account" || names[1] != "payments" {
		t.Errorf("services not sorted: %v", names)
	}
	a := cfg.Service("account")
	if got := a.Config["retries"]; got.Value != "3" || got.Pos.Line != 35 {
		t.Errorf("config retries = %+v, want 3 on line 35", got)
	}
	if got := a.Config["broker"].Value; got != "${kafka.address}" {
		t.Errorf("broker kept raw = %q", got)
	}
	pw := a.Secrets["datasource.password"]
	abs, _ := filepath.Abs("testdata/secrets/pw.txt")
	if pw.File != abs || pw.Env != "" || pw.Field != "services.account.secrets.datasource.password" {
		t.Errorf("password secret = %+v", pw)
	}
	if a.ProbePath != "/health" || a.Replicas != 2 || !reflect.DeepEqual(a.Prebuild, []string{"sh", "-c", "./build.sh"}) {
		t.Errorf("account = %+v", a)
	}
}

func TestLoadDisabledKafka(t *testing.T) {
	dir := t.TempDir()
	base := write(t, dir, "devenv.yaml", "name: x\nkafka: {topics: [a]}\nservices: {}\n")
	off := write(t, dir, "off.yaml", "kafka: {enabled: false}\n")
	cfg, err := Load(base, off)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka != nil {
		t.Errorf("kafka = %+v, want nil when enabled: false", cfg.Kafka)
	}
}

func TestLoadOverride(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"account", "transfer", "other/account2"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, s), "Dockerfile", "FROM scratch\n")
	}
	base := write(t, dir, "devenv.yaml", `name: shop
kafka:
  topics: [a, b]
services:
  account:
    port: 8080
    config: {a: "1", b: "2"}
    ignore: [target/**, tmp/**]
  transfer:
    port: 8081
`)
	over := write(t, filepath.Join(dir, "other"), "override.yaml", `kafka:
  topics: [c]
services:
  account:
    context: ./account2
    config: {b: "20", c: "30"}
    ignore: [build/**]
  transfer:
    enabled: false
`)
	cfg, err := Load(base, over)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Kafka.Topics; len(got) != 1 || got[0].Name != "c" {
		t.Errorf("topics = %+v, want the list replaced by [c]", got)
	}
	if len(cfg.Services) != 1 || cfg.Services[0].Name != "account" {
		t.Fatalf("services = %+v, want only account (transfer disabled)", cfg.Services)
	}
	a := cfg.Services[0]
	got := map[string]string{}
	for k, v := range a.Config {
		got[k] = v.Value
	}
	if want := map[string]string{"a": "1", "b": "20", "c": "30"}; !reflect.DeepEqual(got, want) {
		t.Errorf("config = %v, want maps merged %v", got, want)
	}
	if a.Config["b"].Pos.File != over || a.Config["a"].Pos.File != base {
		t.Errorf("positions: b from %s, a from %s", a.Config["b"].Pos.File, a.Config["a"].Pos.File)
	}
	if !reflect.DeepEqual(a.Ignore, []string{"build/**"}) {
		t.Errorf("ignore = %v, want replaced", a.Ignore)
	}
	if want := filepath.Join(dir, "other", "account2"); a.Context != want {
		t.Errorf("context = %s, want %s (relative to the override file)", a.Context, want)
	}
	if a.Port != 8080 {
		t.Errorf("port = %d, want 8080 kept from the base file", a.Port)
	}
}

func TestLoadOverrideDefaultContextStaysWithFirstFile(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "account"), 0o755)
	write(t, filepath.Join(dir, "account"), "Dockerfile", "FROM scratch\n")
	base := write(t, dir, "devenv.yaml", "services:\n  account:\n    port: 8080\n")
	sub := filepath.Join(dir, "local")
	_ = os.MkdirAll(sub, 0o755)
	over := write(t, sub, "o.yaml", "services:\n  account:\n    replicas: 3\n")
	cfg, err := Load(base, over)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Service("account"); a.Context != filepath.Join(dir, "account") || a.Replicas != 3 {
		t.Errorf("account = %s replicas %d", a.Context, a.Replicas)
	}
}

func TestLoadOverrideErrorNamesTheOverrideFile(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "account"), 0o755)
	write(t, filepath.Join(dir, "account"), "Dockerfile", "FROM scratch\n")
	base := write(t, dir, "devenv.yaml", "services:\n  account:\n    port: 8080\n")
	over := write(t, dir, "o.yaml", "# local\nservices:\n  account:\n    replica: 3\n")
	_, err := Load(base, over)
	want := over + `:4: services.account.replica: unknown field; did you mean "replicas"?`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestLoadCollectsSeveralErrors(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "devenv.yaml", "name: x\nservices:\n  a:\n    prot: 1\n  b:\n    port: 0\n")
	_, err := Load(f)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{":4: services.a.prot: unknown field", ":6: services.b.port: port 0 is out of range"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "devenv.yaml"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "file not found") {
		t.Errorf("err = %v", err)
	}
}

func TestSecretResolve(t *testing.T) {
	dir := t.TempDir()
	pw := write(t, dir, "pw.txt", "s3cret\n")
	env := map[string]string{"SET": "from-env", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	pos := Pos{File: "devenv.yaml", Line: 9}
	tests := []struct {
		name        string
		s           Secret
		want        string
		wantDefault bool
		wantErr     string
	}{
		{"env set", Secret{Env: "SET", Default: "d", HasDefault: true}, "from-env", false, ""},
		{"env set empty", Secret{Env: "EMPTY", Default: "d", HasDefault: true}, "", false, ""},
		{"env default", Secret{Env: "UNSET", Default: "usrpw", HasDefault: true}, "usrpw", true, ""},
		{"env missing", Secret{Env: "UNSET", Field: "services.a.secrets.pw", Pos: pos}, "", false, "devenv.yaml:9: services.a.secrets.pw: environment variable UNSET is not set"},
		{"file", Secret{File: pw, Default: "d", HasDefault: true}, "s3cret", false, ""},
		{"file default", Secret{File: filepath.Join(dir, "nope"), Default: "d", HasDefault: true}, "d", true, ""},
		{"file missing", Secret{File: filepath.Join(dir, "nope"), Field: "f", Pos: pos}, "", false, "does not exist and there is no default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, def, err := tt.s.Resolve(lookup, os.ReadFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || def != tt.wantDefault {
				t.Errorf("got %q default=%v err=%v, want %q default=%v", got, def, err, tt.want, tt.wantDefault)
			}
		})
	}
	// A read error other than "not found" is not hidden behind the default.
	_, _, err := Secret{File: "x", Default: "d", HasDefault: true}.Resolve(lookup, func(string) ([]byte, error) { return nil, fs.ErrPermission })
	if err == nil {
		t.Error("want the permission error")
	}
}

// TestSchemaCoversTestdata checks that every key used in the valid testdata
// files is declared in the schema, so schema and decoder do not drift.
func TestSchemaCoversTestdata(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" || s["additionalProperties"] != false {
		t.Errorf("schema header: %v %v", s["$schema"], s["additionalProperties"])
	}
	props := s["properties"].(map[string]any)
	svcProps := props["services"].(map[string]any)["additionalProperties"].(map[string]any)["properties"].(map[string]any)
	files, _ := filepath.Glob("testdata/valid-*.yaml")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for k := range doc {
			if _, ok := props[k]; !ok {
				t.Errorf("%s: top-level key %q missing from the schema", f, k)
			}
		}
		services, _ := doc["services"].(map[string]any)
		for name, svc := range services {
			m, _ := svc.(map[string]any)
			for k := range m {
				if _, ok := svcProps[k]; !ok {
					t.Errorf("%s: services.%s.%s missing from the schema", f, name, k)
				}
			}
		}
	}
	// Every schema object says additionalProperties: false or gives a schema.
	var walk func(path string, n map[string]any)
	walk = func(path string, n map[string]any) {
		if n["type"] == "object" && n["additionalProperties"] == nil {
			t.Errorf("%s: object without additionalProperties", path)
		}
		if n["description"] == nil && path != "" && !strings.HasSuffix(path, "/additionalProperties") && !strings.HasSuffix(path, "/items") {
			t.Errorf("%s: no description", path)
		}
		for k, v := range asMap(n["properties"]) {
			walk(path+"/"+k, v.(map[string]any))
		}
		if ap, ok := n["additionalProperties"].(map[string]any); ok {
			walk(path+"/additionalProperties", ap)
		}
	}
	walk("", s)
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "devenv.yaml", Line: 12, Field: "services.account.prot", Msg: `unknown field; did you mean "port"?`}
	if got, want := e.Error(), `devenv.yaml:12: services.account.prot: unknown field; did you mean "port"?`; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if got := closest("replica", []string{"port", "replicas", "config"}); got != "replicas" {
		t.Errorf("closest = %q", got)
	}
	if got := closest("zzzzzz", []string{"port", "replicas"}); got != "" {
		t.Errorf("closest = %q, want none", got)
	}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
