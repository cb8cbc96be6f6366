package config

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// loadOne writes yaml as devenv.yaml in a new folder holding a service a
// (with its Dockerfile), and loads it.
func loadOne(t *testing.T, yaml string) (*Config, string, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a"), "Dockerfile", "FROM scratch\n")
	f := write(t, dir, "devenv.yaml", yaml)
	cfg, err := Load(f)
	return cfg, f, err
}

// wantLoadError checks that err is an invalid configuration whose text
// holds file+want.
func wantLoadError(t *testing.T, err error, file, want string) {
	t.Helper()
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), file+want) {
		t.Errorf("err = %v\nwant %q", err, file+want)
	}
}

func TestLoadNamespaceReferences(t *testing.T) {
	head := "name: shop\nservices: {a: {port: 1}}\n"
	tests := []struct {
		name, yaml string
		env        map[string]string // "" value: unset
		want       string            // the namespace
		wantErr    string            // after the file name
	}{
		{"literal", head + "namespace: shop-dev\n", nil, "shop-dev", ""},
		{"default", head, nil, "shop", ""},
		{"user from DEVENV_USER", head + "namespace: shop-${user}\n", map[string]string{EnvUser: "Jane.Doe"}, "shop-jane-doe", ""},
		{"env", head + "namespace: shop-${env.CI_JOB}\n", map[string]string{"CI_JOB": "42"}, "shop-42", ""},
		{"env and user", head + "namespace: ${env.TEAM}-${ user }\n", map[string]string{"TEAM": "pay", EnvUser: "bob"}, "pay-bob", ""},
		{"unset env", head + "namespace: shop-${env.CI_JOB}\n", map[string]string{"CI_JOB": ""}, "",
			":3: namespace: ${env.CI_JOB}: the environment variable CI_JOB is not set"},
		{"expands to an invalid label", head + "namespace: shop-${env.BRANCH}\n", map[string]string{"BRANCH": "Feature/X"}, "",
			`:3: namespace: "shop-${env.BRANCH}" expands to "shop-Feature/X", which is not a valid namespace`},
		{"expands to too long a label", head + "namespace: ${env.LONG}-${user}\n", map[string]string{"LONG": strings.Repeat("a", 60), EnvUser: "bob"}, "",
			`:3: namespace: "${env.LONG}-${user}" expands to "` + strings.Repeat("a", 60) + `-bob", which is not a valid namespace`},
		{"unknown reference", head + "namespace: ${namespace}\n", nil, "",
			":3: namespace: unknown reference ${namespace}; a namespace may use ${user} and ${env.NAME}"},
		{"unclosed", head + "namespace: shop-${user\n", nil, "", `:3: namespace: "${" without its closing "}"`},
		{"user name without letters", head + "namespace: shop-${user}\n", map[string]string{EnvUser: "..."}, "",
			`:3: namespace: ${user}: cannot tell the user name ("..." has no letters or digits); set DEVENV_USER`},
		{"name stays literal", "name: shop-${user}\nservices: {a: {port: 1}}\n", map[string]string{EnvUser: "bob"}, "",
			`:1: name: "shop-${user}" is not a valid project name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k)
				}
			}
			cfg, f, err := loadOne(t, tt.yaml)
			if tt.wantErr != "" {
				wantLoadError(t, err, f, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Namespace != tt.want {
				t.Errorf("namespace = %q, want %q", cfg.Namespace, tt.want)
			}
		})
	}
}

func TestLoadNamespaceOSUser(t *testing.T) {
	t.Setenv(EnvUser, "")
	os.Unsetenv(EnvUser)
	u, err := user.Current()
	if err != nil || UserLabel(u.Username) == "" {
		t.Skipf("no usable OS user name here (%v)", err)
	}
	cfg, _, err := loadOne(t, "name: shop\nnamespace: shop-${user}\nservices: {a: {port: 1}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "shop-" + UserLabel(u.Username); cfg.Namespace != want {
		t.Errorf("namespace = %q, want %q", cfg.Namespace, want)
	}
}

func TestUserLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bob", "bob"},
		{"Jane.Doe", "jane-doe"},
		{"DOMAIN\\jdoe", "domain-jdoe"},
		{"_svc_", "svc"},
		{"émile", "mile"},
		{"...", ""},
		{strings.Repeat("x", 62) + ".y", strings.Repeat("x", 62)},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		if got := UserLabel(tt.in); got != tt.want {
			t.Errorf("UserLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
