package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// complete asks for the completions of args as the shell scripts do, and
// returns the candidates (the last line, ":<directive>", is dropped).
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errOut := run(t, append([]string{"__complete"}, args...)...)
	if code != ExitOK {
		t.Fatalf("__complete %v: exit %d: %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %v: no directive in %q", args, out)
	}
	return lines[:len(lines)-1]
}

func TestCompleteServices(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"orders", "billing"} {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "devenv.yaml")
	yaml := "name: shop\nservices:\n  orders: {context: ./orders, port: 1}\n  billing: {context: ./billing, port: 2}\n"
	if err := os.WriteFile(other, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "-f", rootConfig, ""}, "account transfermoney"},
		{[]string{"logs", "-f", rootConfig, "tr"}, "transfermoney"},
		{[]string{"logs", "--follow", "-f", rootConfig, "account", ""}, "transfermoney"},
		{[]string{"logs", "-f", other, ""}, "billing orders"},        // -f is honoured
		{[]string{"logs", "-f", "/nonexistent/devenv.yaml", ""}, ""}, // a config that does not load: nothing
		{[]string{"images", "build", "kind"}, "kind-node"},
	} {
		if got := strings.Join(complete(t, c.args...), " "); got != c.want {
			t.Errorf("complete %v = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash":       "# bash completion V2 for devenv",
		"zsh":        "#compdef devenv",
		"fish":       "# fish completion for devenv",
		"powershell": "# powershell completion for devenv",
	} {
		code, out, errOut := run(t, "completion", shell)
		if code != ExitOK || !strings.Contains(out, marker) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, stderr %q, script starts %.80q", shell, code, errOut, out)
		}
	}
}
