package log

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	tests := []struct {
		name    string
		verbose bool
		log     func(l *Logger)
		want    string
	}{
		{"info", false, func(l *Logger) { l.Infof("creating %s", "x") }, "creating x\n"},
		{"warning", false, func(l *Logger) { l.Warnf("careful") }, "warning: careful\n"},
		{"debug hidden", false, func(l *Logger) { l.Debugf("detail") }, ""},
		{"debug shown", true, func(l *Logger) { l.Debugf("detail %d", 1) }, "debug: detail 1\n"},
		{"percent kept", false, func(l *Logger) { l.Infof("%s", "100%") }, "100%\n"},
		{"slog attrs", false, func(l *Logger) { l.Slog().Info("pulled", "image", "a:b", "note", "two words") }, "pulled image=a:b note=\"two words\"\n"},
		{"slog group", false, func(l *Logger) { l.Slog().With("k", 1).WithGroup("g").Warn("w", "x", true) }, "warning: w k=1 g.x=true\n"},
		{"slog debug hidden", false, func(l *Logger) { l.Slog().Debug("d") }, ""},
		{"round trip", true, func(l *Logger) { FromSlog(l.Slog()).Debugf("again") }, "debug: again\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tc.log(New(&out, tc.verbose))
			got := out.String()
			if tc.verbose && got != "" {
				// -v lines start with the seconds since New: "  0.000s ".
				ts, rest, ok := strings.Cut(got, "s ")
				if _, err := strconv.ParseFloat(strings.TrimSpace(ts), 64); !ok || err != nil {
					t.Fatalf("verbose line %q does not start with a time", got)
				}
				got = rest
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFromSlog(t *testing.T) {
	var nilLogger *Logger
	nilLogger.Infof("nothing") // must not panic
	if nilLogger.Verbose() || FromSlog(nil).Verbose() {
		t.Error("a nil logger is not verbose")
	}
	FromSlog(nil).Infof("silent")

	var out bytes.Buffer
	s := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	l := FromSlog(s)
	if !l.Verbose() {
		t.Error("a debug-level slog logger should make a verbose Logger")
	}
	l.Warnf("w %d", 1)
	w := l.Writer()
	_, _ = w.Write([]byte("line one\nline "))
	_, _ = w.Write([]byte("two\n"))
	want := "level=WARN msg=\"w 1\"\nlevel=INFO msg=\"line one\"\nlevel=INFO msg=\"line two\"\n"
	if got := out.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if New(&out, false).Writer() != &out || FromSlog(New(&out, false).Slog()).Writer() != &out {
		t.Error("Writer should be New's stream")
	}
}
