package log

import (
	"bytes"
	"testing"
)

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewPrefixWriter(&out, "[s] ")
	for _, p := range []string{"one\ntw", "o\n", "three"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "[s] one\n[s] two\n" {
		t.Errorf("before Flush: %q", got)
	}
	w.Flush()
	w.Flush()
	if got := out.String(); got != "[s] one\n[s] two\n[s] three\n" {
		t.Errorf("after Flush: %q", got)
	}
}
