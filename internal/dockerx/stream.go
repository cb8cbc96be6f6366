package dockerx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// StreamOptions say what ReadStream does with the engine's messages.
type StreamOptions struct {
	// Out receives the output text as it comes (stream and status text).
	Out io.Writer
	// Line is called with each complete, non-empty output line, trimmed and
	// without terminal escapes.
	Line func(line string)
	// Aux is called with each message's aux payload (a build's image ID).
	Aux func(aux json.RawMessage)
	// Tail is how many output lines an error carries; 0 means 20.
	Tail int
}

// message is one object of the engine's JSON message stream.
type message struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

var ansiSeq = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// ReadStream reads the JSON message stream the engine answers builds,
// imports and loads with, until it ends. The first error message in the
// stream is returned as an error that carries the last lines of output.
func ReadStream(r io.Reader, o StreamOptions) error {
	if o.Tail == 0 {
		o.Tail = 20
	}
	var tail []string
	rest := "" // an unterminated line
	keep := func(text string) {
		lines := strings.Split(rest+text, "\n")
		rest = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			l = strings.TrimSpace(ansiSeq.ReplaceAllString(l, ""))
			if l == "" {
				continue
			}
			if o.Line != nil {
				o.Line(l)
			}
			tail = append(tail, l)
			if len(tail) > o.Tail {
				tail = tail[1:]
			}
		}
	}
	dec := json.NewDecoder(r)
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				keep("\n")
				return nil
			}
			return fmt.Errorf("reading the engine's output: %w", err)
		}
		for _, text := range []string{m.Stream, statusLine(m.Status)} {
			if text == "" {
				continue
			}
			if o.Out != nil {
				_, _ = io.WriteString(o.Out, text)
			}
			keep(text)
		}
		if msg := m.Error; msg != "" || m.ErrorDetail != nil {
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			keep("\n")
			if len(tail) == 0 {
				return errors.New(strings.TrimSpace(msg))
			}
			return fmt.Errorf("%s\nlast output:\n  %s", strings.TrimSpace(msg), strings.Join(tail, "\n  "))
		}
		if len(m.Aux) > 0 && o.Aux != nil {
			o.Aux(m.Aux)
		}
	}
}

func statusLine(s string) string {
	if s == "" {
		return ""
	}
	return s + "\n"
}
