package termx

import (
	"bytes"
	"io"
	"os"
	"testing"
)

func TestTerminalAndColor(t *testing.T) {
	file, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tty := func(int) bool { return true } // as if every file were a terminal
	notTTY := func(int) bool { return false }
	for _, c := range []struct {
		name            string
		w               io.Writer
		isTTY           func(int) bool
		env             map[string]string
		terminal, color bool
	}{
		{"terminal", file, tty, nil, true, true},
		{"NO_COLOR=1", file, tty, map[string]string{"NO_COLOR": "1"}, true, false},
		{"NO_COLOR empty", file, tty, map[string]string{"NO_COLOR": ""}, true, true},
		{"TERM=dumb", file, tty, map[string]string{"TERM": "dumb"}, false, false},
		{"file or pipe", file, notTTY, nil, false, false},
		{"buffer", &bytes.Buffer{}, tty, nil, false, false},
		{"nil file", (*os.File)(nil), tty, nil, false, false},
		{"nil", nil, tty, nil, false, false},
	} {
		ch := check{getenv: func(k string) string { return c.env[k] }, isTTY: c.isTTY}
		if got := ch.terminal(c.w); got != c.terminal {
			t.Errorf("%s: terminal %v, want %v", c.name, got, c.terminal)
		}
		if got := ch.color(c.w); got != c.color {
			t.Errorf("%s: colour %v, want %v", c.name, got, c.color)
		}
	}
}

// A real file is never a terminal, whatever the environment says.
func TestFileIsNotATerminal(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || Color(f) {
		t.Error("a regular file is reported as a terminal")
	}
}
