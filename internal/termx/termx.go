package termx

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal that understands cursor
// movement: an *os.File open on a terminal, with TERM not set to "dumb".
// Anything else (a pipe, a file, a buffer) gets plain lines.
func IsTerminal(w io.Writer) bool {
	return check{getenv: os.Getenv, isTTY: term.IsTerminal}.terminal(w)
}

// Color reports whether colour may be written to w: w is a terminal
// (IsTerminal) and NO_COLOR is unset or empty.
func Color(w io.Writer) bool {
	return check{getenv: os.Getenv, isTTY: term.IsTerminal}.color(w)
}

// check holds what the answers depend on, so that tests can replace them.
type check struct {
	getenv func(string) string
	isTTY  func(fd int) bool
}

func (c check) terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil || c.getenv("TERM") == "dumb" {
		return false
	}
	return c.isTTY(int(f.Fd()))
}

func (c check) color(w io.Writer) bool {
	return c.getenv("NO_COLOR") == "" && c.terminal(w)
}
