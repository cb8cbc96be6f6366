// Package log is devenv's small logger: a user level, a debug level (-v) and a
// warning level, passed in explicitly and silent by default when devenv is used
// as a library.
package log

import (
	"fmt"
	"io"
	"sync"
)

// Logger prints user-facing progress. The zero value is not usable; use New or Nop.
type Logger struct {
	mu      *sync.Mutex
	out     io.Writer
	verbose bool
}

// New returns a Logger writing to out. With verbose set, Debugf lines are shown too.
func New(out io.Writer, verbose bool) *Logger {
	return &Logger{mu: &sync.Mutex{}, out: out, verbose: verbose}
}

// Nop returns a Logger that prints nothing.
func Nop() *Logger { return New(io.Discard, false) }

// Infof prints a line for the user.
func (l *Logger) Infof(format string, args ...any) { l.printf("", format, args...) }

// Warnf prints a warning line.
func (l *Logger) Warnf(format string, args ...any) { l.printf("warning: ", format, args...) }

// Debugf prints a line only when the logger is verbose (-v).
func (l *Logger) Debugf(format string, args ...any) {
	if l.verbose {
		l.printf("debug: ", format, args...)
	}
}

// Verbose reports whether debug output is on.
func (l *Logger) Verbose() bool { return l != nil && l.verbose }

// Writer returns the underlying writer, for streaming command output.
func (l *Logger) Writer() io.Writer {
	if l == nil {
		return io.Discard
	}
	return l.out
}

func (l *Logger) printf(prefix, format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, prefix+format+"\n", args...)
}
