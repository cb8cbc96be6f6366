package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/devenv-tool/devenv/watch"
)

// The tests in this file are the "bad input" items of the hardening issue:
// each input is refused with the file, the line and the field.

func TestLoadSecondDocument(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM scratch\n")
	tests := []struct {
		name, yaml, want string
	}{
		{"second document", "services:\n  a:\n    context: .\n    port: 8080\n---\nservices:\n  a:\n    port: notaport\n",
			"devenv.yaml:5: a second YAML document starts here"},
		{"explicit first document", "---\nservices:\n  a:\n    context: .\n    port: 8080\n---\nname: x\n",
			"devenv.yaml:6: a second YAML document starts here"},
		{"third document after an empty second", "services:\n  a:\n    context: .\n    port: 8080\n---\n---\nname: x\n",
			"devenv.yaml:6: a second YAML document starts here"},
		{"syntax error in the second document", "services:\n  a:\n    context: .\n    port: 8080\n---\nname: [\n",
			"devenv.yaml:6: invalid YAML"},
		{"trailing marker only", "services:\n  a:\n    context: .\n    port: 8080\n---\n", ""},
		{"document end marker", "services:\n  a:\n    context: .\n    port: 8080\n...\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := write(t, dir, "devenv.yaml", tt.yaml)
			_, err := Load(f)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), filepath.Join(dir, tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadServiceNameCollisions(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"db", "account"} {
		_ = os.MkdirAll(filepath.Join(dir, s), 0o755)
		write(t, filepath.Join(dir, s), "Dockerfile", "FROM scratch\n")
	}
	tests := []struct {
		name, yaml string
		want       []string // "" = loads
	}{
		{"kafka and h2", "kafka: {service: db}\nh2: {mode: server, service: db}\nservices: {account: {port: 1}}\n",
			[]string{`:2: h2.service: the Service name "db" is also set by kafka.service (` + dir + `/devenv.yaml:1)`}},
		{"h2 default and kafka", "kafka:\n  service: h2\nh2: {mode: server}\nservices: {account: {port: 1}}\n",
			[]string{`:3: h2.service: the Service name "h2" is also set by kafka.service (` + dir + `/devenv.yaml:2)`}},
		{"service and h2", "h2:\n  mode: server\n  service: db\nservices:\n  db: {port: 1}\n",
			[]string{`:5: services.db: the Service name "db" is also set by h2.service (` + dir + `/devenv.yaml:3)`}},
		{"service and default kafka", "kafka: {}\nservices:\n  kafka: {port: 1, context: ./db}\n",
			[]string{`:3: services.kafka: the Service name "kafka" is also set by kafka.service (` + dir + `/devenv.yaml:1)`}},
		{"h2 in memory mode renders no Service", "kafka: {service: db}\nh2: {service: db}\nservices: {account: {port: 1}}\n", nil},
		{"distinct names", "kafka: {service: broker}\nh2: {mode: server, service: db2}\nservices: {db: {port: 1}}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := write(t, dir, "devenv.yaml", tt.yaml)
			_, err := Load(f)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an invalid configuration", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant %q", err, w)
				}
			}
		})
	}
}

func TestLoadServiceNameCollisionAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "account"), 0o755)
	write(t, filepath.Join(dir, "account"), "Dockerfile", "FROM scratch\n")
	base := write(t, dir, "devenv.yaml", "kafka: {service: db}\nservices: {account: {port: 1}}\n")
	over := write(t, dir, "local.yaml", "# local\nh2:\n  mode: server\n  service: db\n")
	_, err := Load(base, over)
	want := over + `:4: h2.service: the Service name "db" is also set by kafka.service (` + base + `:1)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant %q", err, want)
	}
}

func TestLoadKeysKubernetesRefuses(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM scratch\n")
	head := "services:\n  a:\n    context: .\n    port: 8080\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"config key with a space", "    config:\n      a b: x\n", `:6: services.a.config.a b: "a b" is not a valid ConfigMap key`},
		{"config key with a non-ASCII letter", "    config: {ä: x}\n", `:5: services.a.config.ä: "ä" is not a valid ConfigMap key`},
		{"config key ..", "    config: {..: x}\n", `:5: services.a.config...: ".." is not a valid ConfigMap key`},
		{"secret key with a space", "    secrets:\n      a b: {env: A, default: x}\n", `:6: services.a.secrets.a b: "a b" is not a valid Secret key`},
		{"secret key with a non-ASCII letter", "    secrets:\n      ä: {env: A, default: x}\n", `:6: services.a.secrets.ä: "ä" is not a valid Secret key`},
		{"valid keys", "    config: {spring.profile: x, a-b_c: y}\n    secrets: {datasource.password: {env: A, default: x}}\n", ""},
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
}

func TestLoadPatternsThatDoNotCompile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM scratch\n")
	head := "services:\n  a:\n    context: .\n    port: 8080\n"
	for _, key := range []string{"ignore", "watch"} {
		f := write(t, dir, "devenv.yaml", head+"    "+key+":\n      - ok/**\n      - \"[\"\n")
		_, err := Load(f)
		want := f + ":7: services.a." + key + `[1]: pattern "[" does not compile: syntax error in pattern`
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v\nwant %q", key, err, want)
		}
	}
}

// TestPatternCheckAgreesWithWatcher checks that Load refuses exactly the
// ignore and watch patterns the watcher cannot compile.
func TestPatternCheckAgreesWithWatcher(t *testing.T) {
	root := t.TempDir()
	pats := []string{"[", "src/[a-", "a\\", "!", "! ", "target/**", "**/*.go", "!keep", "# comment", " ", "",
		"/abs/*", "[]a]", "\\[", "src/[!a]*", "x\n[", "*.{java,kt}", "../up", "a/[^b]"}
	for _, p := range pats {
		for _, key := range []string{"ignore", "watch"} {
			spec := watch.Spec{Service: "a", Root: root}
			if key == "ignore" {
				spec.Ignore = []string{p}
			} else {
				spec.Watch = []string{p}
			}
			w, werr := watch.New([]watch.Spec{spec}, watch.Options{})
			if w != nil {
				_ = w.Close()
			}
			cerr := checkPattern(p)
			if (werr == nil) != (cerr == nil) {
				t.Errorf("%s %q: watcher says %v, Load says %v", key, p, werr, cerr)
			}
		}
	}
}

func TestLoadSymlinkedContext(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "src", "account")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, real, "Dockerfile", "FROM scratch\n")
	for _, link := range []string{"link", "account"} {
		if err := os.Symlink(real, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	want, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, yaml string }{
		{"context: is a link", "services:\n  account:\n    context: ./link\n    port: 8080\n"},
		{"the default ./<name> is a link", "services:\n  account:\n    port: 8080\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(write(t, dir, "devenv.yaml", tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.Service("account")
			if a.Context != want || a.Dockerfile != filepath.Join(want, "Dockerfile") {
				t.Errorf("context %s dockerfile %s, want the link's target %s", a.Context, a.Dockerfile, want)
			}
		})
	}
}

// TestLoadAliasBombAcrossFiles: a file of nested aliases is small as a
// graph and huge as a tree. Given twice with -f, the merge must not expand it.
func TestLoadAliasBombAcrossFiles(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\na: &a {k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v, k9: v}\n")
	prev := "a"
	for _, l := range []string{"b", "c", "d", "e", "f", "g"} {
		b.WriteString(l + ": &" + l + " {")
		for i := 1; i <= 9; i++ {
			if i > 1 {
				b.WriteString(", ")
			}
			b.WriteString("k" + string(rune('0'+i)) + ": *" + prev)
		}
		b.WriteString("}\n")
		prev = l
	}
	b.WriteString("kafka: {env: *g}\nservices: {}\n")
	f := write(t, t.TempDir(), "bomb.yaml", b.String())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Load(f, f, f)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("Load(bomb, bomb, bomb): %v, %d KiB allocated", took, allocated>>10)
	if err == nil || !strings.Contains(err.Error(), f+":2: a: unknown field") {
		t.Errorf("err = %v, want the unknown fields named", err)
	}
	if took > 5*time.Second || allocated > 100<<20 {
		t.Errorf("took %v and allocated %d MiB; want well under 5 s and 100 MiB", took, allocated>>20)
	}
}

// TestErrorsHideSecretValues: whatever is wrong with a secret, its value is
// not in the error.
func TestErrorsHideSecretValues(t *testing.T) {
	const value = "hunter2-literal"
	dir := t.TempDir()
	write(t, dir, "Dockerfile", "FROM scratch\n")
	head := "services:\n  a:\n    context: .\n    port: 8080\n"
	inputs := []string{
		"    secrets:\n      pw: hunter2-literal\n",
		"    secrets:\n      pw: \"hunter2-literal\"\n",
		"    secrets:\n      pw: 'hunter2-literal'\n",
		"    secrets:\n      pw: |\n        hunter2-literal\n",
		"    secrets: hunter2-literal\n",
		"    secrets: [hunter2-literal]\n",
		"    secrets:\n      pw: [hunter2-literal]\n",
		"    secrets:\n      pw: {value: hunter2-literal}\n",
		"    secrets:\n      pw: {env: \"hunter2-literal value\", default: x}\n",
		"    secrets:\n      pw: {env: A, file: hunter2-literal}\n",
		"    secrets:\n      pw: {default: hunter2-literal}\n",
		"    secrets:\n      pw: {env: A, default: [hunter2-literal]}\n",
		"    secrets:\n      pw: {env: A, default: {x: hunter2-literal}}\n",
		"    secrets:\n      pw: {env: A, env: hunter2-literal}\n",
		"    secrets:\n      pw: hunter2-literal\n      pw: {env: A}\n",
		"    secrets:\n      pw: \"hunter2-literal\n",
		"    secrets:\n      pw: {env: A, default: hunter2-literal}\n    config: {pw: x}\n",
		"    secrets:\n      hunter2-literal: hunter2-literal\n",
	}
	for _, in := range inputs {
		f := write(t, dir, "devenv.yaml", head+in)
		_, err := Load(f)
		if err == nil {
			t.Errorf("%q: loaded; want an error", in)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), "secrets.hunter2-literal", "secrets.<key>")
		if strings.Contains(msg, value) {
			t.Errorf("the error shows the secret's value:\n%s\ninput:\n%s", err, in)
		}
	}
}
