package build

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadBuildStream(t *testing.T) {
	ok := `{"stream":"Step 1/2 : FROM scratch\n"}
{"stream":" ---\u003e \n"}
{"stream":"Step 2/2 : COPY app /app\n"}
{"aux":{"ID":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
{"stream":"Successfully built 0123456789ab\n"}
`
	var out bytes.Buffer
	id, err := readBuildStream(strings.NewReader(ok), &out)
	if err != nil {
		t.Fatal(err)
	}
	if id != "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("id = %q", id)
	}
	if !strings.Contains(out.String(), "Step 2/2 : COPY app /app\n") {
		t.Errorf("output not streamed: %q", out.String())
	}

	var lines strings.Builder
	for i := range 30 {
		lines.WriteString(`{"stream":"line ` + string(rune('a'+i%26)) + `\n"}` + "\n")
	}
	lines.WriteString(`{"errorDetail":{"message":"COPY failed: file not found"},"error":"COPY failed: file not found"}` + "\n")
	_, err = readBuildStream(strings.NewReader(lines.String()), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "COPY failed: file not found") {
		t.Fatalf("err = %v, want the engine's message", err)
	}
	if n := strings.Count(err.Error(), "\n  line "); n != tailLines {
		t.Errorf("error carries %d output lines, want %d:\n%v", n, tailLines, err)
	}

	if _, err := readBuildStream(strings.NewReader(`{"stream":"hi\n"}`), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "image ID") {
		t.Errorf("stream without ID: err = %v", err)
	}
	if _, err := readBuildStream(strings.NewReader(`{"stream":`), &bytes.Buffer{}); err == nil {
		t.Error("truncated stream: no error")
	}
}

func TestRepository(t *testing.T) {
	tests := []struct{ project, service, want string }{
		{"cosmos", "account", "devenv.local/cosmos-account"},
		{"My Project", "Transfer_Money", "devenv.local/my-project-transfer-money"},
	}
	for _, tt := range tests {
		got, err := Repository(tt.project, tt.service)
		if err != nil || got != tt.want {
			t.Errorf("Repository(%q, %q) = %q, %v; want %q", tt.project, tt.service, got, err, tt.want)
		}
	}
	if _, err := Repository("", "x"); err == nil {
		t.Error("empty project accepted")
	}
}

func TestRepositoryIn(t *testing.T) {
	for _, tc := range []struct{ registry, want string }{
		{"", "devenv.local/cosmos-account"},
		{"localhost:5001", "localhost:5001/cosmos-account"},
		{"registry.example.com/team/", "registry.example.com/team/cosmos-account"},
	} {
		got, err := RepositoryIn(tc.registry, "Cosmos", "account")
		if err != nil || got != tc.want {
			t.Errorf("RepositoryIn(%q) = %q, %v; want %q", tc.registry, got, err, tc.want)
		}
	}
}
