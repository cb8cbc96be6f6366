// Package log is devenv's small logger: a user level, a debug level (-v) and a
// warning level, passed in explicitly and silent by default when devenv is used
// as a library.
//
// Logger is a printf-style facade over log/slog, so the exported packages
// (cluster, kafka, h2) can take a *slog.Logger from a program of their own
// while devenv's code keeps calling Infof and Debugf. New prints plain lines
// (see lineHandler); FromSlog wraps any slog.Logger.
package log

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Logger prints user-facing progress. A nil *Logger prints nothing; use New,
// FromSlog or Nop to make one.
type Logger struct {
	s   *slog.Logger
	out io.Writer // the stream behind New's lines; nil for FromSlog's
}

// New returns a Logger writing plain lines to out: Info as the message,
// Warn as "warning: message", Debug as "debug: message" (only with verbose),
// each followed by its attributes as key=value. With verbose, every line
// starts with the seconds since New (a timeline of the run).
func New(out io.Writer, verbose bool) *Logger {
	return &Logger{s: slog.New(&lineHandler{mu: &sync.Mutex{}, out: out, verbose: verbose, start: time.Now()}), out: out}
}

// FromSlog returns a Logger that sends its lines to s; a nil s prints nothing.
// The debug level is on when s is enabled for slog.LevelDebug.
func FromSlog(s *slog.Logger) *Logger {
	if s == nil {
		return Nop()
	}
	l := &Logger{s: s}
	if h, ok := s.Handler().(*lineHandler); ok && len(h.attrs) == 0 && h.group == "" {
		l.out = h.out
	}
	return l
}

// Nop returns a Logger that prints nothing.
func Nop() *Logger { return &Logger{s: slog.New(slog.DiscardHandler), out: io.Discard} }

// Slog returns the slog.Logger behind l (one that discards everything for a nil l).
func (l *Logger) Slog() *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.s
}

// Infof prints a line for the user.
func (l *Logger) Infof(format string, args ...any) { l.logf(slog.LevelInfo, format, args...) }

// Warnf prints a warning line.
func (l *Logger) Warnf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }

// Debugf prints a line only when the logger is verbose (-v).
func (l *Logger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }

// Verbose reports whether debug output is on.
func (l *Logger) Verbose() bool {
	return l != nil && l.s.Enabled(context.Background(), slog.LevelDebug)
}

// Writer returns a writer for streaming command output: New's stream itself,
// or for FromSlog a writer that logs each complete line at the info level.
func (l *Logger) Writer() io.Writer {
	if l == nil {
		return io.Discard
	}
	if l.out != nil {
		return l.out
	}
	return &lineWriter{l: l}
}

func (l *Logger) logf(level slog.Level, format string, args ...any) {
	if l == nil || !l.s.Enabled(context.Background(), level) {
		return
	}
	l.s.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

// lineWriter turns written bytes into one info record per line.
type lineWriter struct {
	l   *Logger
	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.l.Infof("%s", w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}
