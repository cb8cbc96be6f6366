package render

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devenv-tool/devenv/internal/config"
	"github.com/devenv-tool/devenv/templates"
)

// writeProject writes a one-service project whose service a has the given
// extra lines, and returns the devenv.yaml path.
func writeProject(t *testing.T, service string) string {
	t.Helper()
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "a", "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	f := filepath.Join(dir, "devenv.yaml")
	if err := os.WriteFile(f, []byte("name: x\nservices:\n  a:\n    port: 1\n"+service), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestUnclosedReference(t *testing.T) {
	tests := []struct{ value, want string }{
		{`"${namespace"`, `:6: services.a.config.v: "${" without its closing "}"`},
		{`"x-${namespace}-${kafka.address"`, `:6: services.a.config.v: "${" without its closing "}"`},
		{`"${"`, `:6: services.a.config.v: "${" without its closing "}"`},
		{`"$${namespace"`, ""}, // an escaped ${ is text
		{`"${namespace}"`, ""},
	}
	for _, tt := range tests {
		f := writeProject(t, "    config:\n      v: "+tt.value+"\n")
		_, err := Objects(load(t, f), Options{})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.value, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), f+tt.want) {
			t.Errorf("%s: err = %v\nwant %q", tt.value, err, f+tt.want)
		}
	}
	// env values are expanded the same way.
	f := writeProject(t, "    env: {A: \"${namespace\"}\n")
	if _, err := Objects(load(t, f), Options{}); err == nil || !strings.Contains(err.Error(), `services.a.env.A: "${" without its closing "}"`) {
		t.Errorf("env: err = %v", err)
	}
}

func TestSecretFileBoundedByDefault(t *testing.T) {
	f := writeProject(t, "    secrets:\n      pw: {file: /dev/zero}\n")
	_, err := Objects(load(t, f), Options{})
	want := f + ":6: services.a.secrets.pw: secret file /dev/zero is not a regular file"
	if err == nil || !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant %q", err, want)
	}
}

// TestTemplateErrorsHideSecretValues: a custom Secret template that fails,
// however it fails, does not print the values it was given.
func TestTemplateErrorsHideSecretValues(t *testing.T) {
	const value = "hunter2-literal"
	encoded := base64.StdEncoding.EncodeToString([]byte(value))
	bodies := map[string]string{
		"invalid YAML":       "apiVersion: v1\nkind: Secret\nmetadata: {name: {{ .Name }}}\ndata:\n{{- range $k, $v := .Data }}\n  {{ $k }}: {{ $v }}: [\n{{- end }}\n",
		"bad indentation":    "apiVersion: v1\nkind: Secret\nmetadata: {name: {{ .Name }}}\ndata:\n{{- range $k, $v := .Data }}\n  {{ $k }}: {{ $v }}\n {{ $v }}\n{{- end }}\n",
		"not a mapping key":  "apiVersion: v1\nkind: Secret\nmetadata: {name: {{ .Name }}}\ndata:\n{{- range $k, $v := .Data }}\n  ? [{{ $v }}]\n  : x\n{{- end }}\n",
		"range over a value": "{{ range $k, $v := .Data }}{{ range $v }}{{ end }}{{ end }}\n",
		"no kind":            "apiVersion: v1\nmetadata: {name: {{ .Name }}}\ndata: {{ json .Data }}\n",
		"a list":             "- {{ json .Data }}\n",
		"wrong field":        "{{ range $k, $v := .Data }}{{ $v.Foo }}{{ end }}\n",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "secret.yaml.tmpl"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			set, err := templates.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			f := writeProject(t, "    secrets:\n      pw: {env: PW}\n")
			for _, show := range []bool{true, false} {
				_, err = Objects(load(t, f), Options{Templates: set, ShowSecrets: show, LookupEnv: env(map[string]string{"PW": value})})
				if err == nil {
					t.Fatal("rendered; want an error")
				}
				if !strings.Contains(err.Error(), "secret") {
					t.Errorf("the error does not say which template failed: %v", err)
				}
				if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), encoded) {
					t.Errorf("the error shows the secret's value:\n%v", err)
				}
			}
		})
	}
}
