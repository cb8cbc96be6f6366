package dockerx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReadStream(t *testing.T) {
	var out bytes.Buffer
	var lines []string
	var aux []string
	err := ReadStream(strings.NewReader(`{"stream":"Step 1/2 : FROM x\n"}{"status":"pulling"}{"stream":"\u001b[1mdone"}{"stream":"\n"}{"aux":{"ID":"sha256:abc"}}`),
		StreamOptions{Out: &out, Line: func(l string) { lines = append(lines, l) }, Aux: func(a json.RawMessage) { aux = append(aux, string(a)) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Step 1/2 : FROM x", "pulling", "done"}; strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", lines, want)
	}
	if len(aux) != 1 || !strings.Contains(aux[0], "sha256:abc") {
		t.Errorf("aux = %q", aux)
	}
	if !strings.Contains(out.String(), "pulling\n") {
		t.Errorf("out = %q", out.String())
	}

	err = ReadStream(strings.NewReader(`{"stream":"Step 2/2 : COPY a b\n"}{"errorDetail":{"message":"COPY failed: no a"},"error":"COPY failed: no a"}`), StreamOptions{})
	if err == nil || !strings.Contains(err.Error(), "COPY failed: no a") || !strings.Contains(err.Error(), "Step 2/2 : COPY a b") {
		t.Errorf("err = %v, want the message and the last output", err)
	}
	if err := ReadStream(strings.NewReader(`{"stream":`), StreamOptions{}); err == nil {
		t.Error("a cut stream must be an error")
	}
}
