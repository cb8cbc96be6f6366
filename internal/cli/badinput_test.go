package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputExitsTwo runs validate and render on the hardening issue's bad
// inputs: each exits 2 with FILE:LINE: FIELD on stderr, prints nothing on
// stdout and leaves the project folder as it was.
func TestBadInputExitsTwo(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	head := "name: x\nservices:\n  a:\n    port: 1\n"
	tests := []struct {
		name, yaml string
		want       string // after the file name
	}{
		{"second document", head + "---\nservices: {a: {port: notaport}}\n", ":5: a second YAML document starts here"},
		{"kafka and h2 Services", "name: x\nkafka: {service: db}\nh2: {mode: server, service: db}\nservices: {a: {port: 1}}\n",
			`:3: h2.service: the Service name "db" is also set by kafka.service`},
		{"ConfigMap key", head + "    config: {a b: x}\n", `:5: services.a.config.a b: "a b" is not a valid ConfigMap key`},
		{"Secret key", head + "    secrets:\n      ä: {env: X, default: y}\n", `:6: services.a.secrets.ä: "ä" is not a valid Secret key`},
		{"ignore pattern", head + "    ignore: [\"[\"]\n", `:5: services.a.ignore[0]: pattern "[" does not compile`},
		{"watch pattern", head + "    watch: [\"[\"]\n", `:5: services.a.watch[0]: pattern "[" does not compile`},
		{"unclosed reference", head + "    config: {ns: \"${namespace\"}\n", `:5: services.a.config.ns: "${" without its closing "}"`},
		{"secret file /dev/zero", head + "    secrets:\n      pw: {file: /dev/zero}\n", ":6: services.a.secrets.pw: secret file /dev/zero is not a regular file"},
		{"secret file of 2 MiB", head + "    secrets:\n      pw: {file: " + big + "}\n", ":6: services.a.secrets.pw: secret file " + big + " is larger than 1 MiB"},
		{"literal secret", head + "    secrets:\n      pw: hunter2-literal\n", ":6: services.a.secrets.pw: expected {env: VAR} or {file: ./path}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.MkdirAll(filepath.Join(dir, "a"), 0o755)
			_ = os.WriteFile(filepath.Join(dir, "a", "Dockerfile"), []byte("FROM scratch\n"), 0o644)
			f := filepath.Join(dir, "devenv.yaml")
			if err := os.WriteFile(f, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, verb := range [][]string{{"validate"}, {"render", "--docker=false"}} {
				code, out, errOut := run(t, append(verb, "-f", f)...)
				if code != ExitConfig || out != "" || !strings.Contains(errOut, f+tt.want) {
					t.Errorf("%s: exit %d, stdout %q, stderr %q\nwant exit 2 and %q", verb[0], code, out, errOut, f+tt.want)
				}
				if strings.Contains(errOut, "hunter2-literal") {
					t.Errorf("%s: stderr shows the secret: %s", verb[0], errOut)
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("the project folder changed: %v", entries)
			}
		})
	}
}
