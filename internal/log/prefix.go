package log

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// PrefixWriter writes whole lines to an io.Writer, each starting with a
// prefix ("[account] "): the output of builds and tests interleaved with
// devenv's own lines. Flush writes a last line that has no newline.
type PrefixWriter struct {
	mu     sync.Mutex
	prefix string
	out    io.Writer
	buf    []byte
}

// NewPrefixWriter returns a PrefixWriter writing to out.
func NewPrefixWriter(out io.Writer, prefix string) *PrefixWriter {
	return &PrefixWriter{prefix: prefix, out: out}
}

// Write writes every complete line of p, prefixed; a partial line waits
// for its end (or Flush).
func (w *PrefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if _, err := fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf[:i]); err != nil {
			return len(p), err
		}
		w.buf = w.buf[i+1:]
	}
}

// Flush writes a last unterminated line, if any.
func (w *PrefixWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, w.buf)
		w.buf = nil
	}
}
