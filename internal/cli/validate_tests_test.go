package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestValidatePrintsTests(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "e2e"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, s, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(dir, "devenv.yaml")
	yaml := `name: x
services:
  a: {port: 1}
  b: {port: 2}
tests:
  roundtrip:
    command: [go, test, ./e2e]
    dir: ./e2e
    services: [b]
    timeout: 2m
  smoke: {command: "curl -fsS $DEVENV_SERVICE_A_URL"}
`
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "validate", "-f", f)
	want := f + `: ok (2 services, no kafka, h2 memory)
  test roundtrip: go test ./e2e in e2e (after b; timeout 2m0s)
  test smoke: sh -c "curl -fsS $DEVENV_SERVICE_A_URL" in . (after any service; timeout 5m0s)
`
	if code != ExitOK || out != want {
		t.Errorf("exit %d, stderr %q, out:\n%s\nwant:\n%s", code, errOut, out, want)
	}
}
