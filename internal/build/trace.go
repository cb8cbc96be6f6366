package build

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// BuildKit's progress comes, in the engine's JSON message stream, as aux
// messages {"id":"moby.buildkit.trace","aux":"<base64>"}: each a protobuf
// moby.buildkit.v1.StatusResponse (api/services/control/control.proto),
// whose field numbers have not changed since BuildKit v0.8 (Docker 20.10).
// devenv reads the few fields it needs with protowire rather than importing
// BuildKit's gRPC control API.

// vertex is one step of a BuildKit build ("[2/3] RUN make").
type vertex struct {
	digest    string
	name      string
	cached    bool
	started   bool
	completed bool
	err       string
	logs      []string // the step's output lines, the last tailLines kept
	partial   string   // an unterminated output line
	num       int      // order of first appearance, from 1
	startedAt time.Time
	doneAt    time.Time
	said      bool // its name was printed
	saidDone  bool // its end was printed
}

// trace follows a BuildKit build's progress: it prints each step, its
// output and its end (as `docker build --progress=plain` does) and keeps
// what an error needs.
type trace struct {
	out      io.Writer
	vertexes map[string]*vertex
	order    []*vertex
}

func newTrace(out io.Writer) *trace {
	if out == nil {
		out = io.Discard
	}
	return &trace{out: out, vertexes: map[string]*vertex{}}
}

// add decodes one StatusResponse and prints what is new.
func (t *trace) add(b []byte) error {
	var logs [][]byte
	var changed []*vertex
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1: // Vertex
			vx, err := t.vertex(v)
			if err != nil {
				return err
			}
			changed = append(changed, vx)
		case 3: // VertexLog
			logs = append(logs, v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("decoding BuildKit's progress: %w", err)
	}
	// Each step's name, then its new output, then its end.
	for _, vx := range changed {
		t.sayStart(vx)
		for i, l := range logs {
			if l != nil && logVertex(l) == vx.digest {
				if err := t.log(l); err != nil {
					return fmt.Errorf("decoding BuildKit's progress: %w", err)
				}
				logs[i] = nil
			}
		}
		t.sayEnd(vx)
	}
	for _, l := range logs {
		if l == nil {
			continue
		}
		if err := t.log(l); err != nil {
			return fmt.Errorf("decoding BuildKit's progress: %w", err)
		}
	}
	return nil
}

// logVertex returns the step digest of an encoded VertexLog ("" when malformed).
func logVertex(b []byte) string {
	var digest string
	_ = fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == 1 && typ == protowire.BytesType {
			digest = string(v)
		}
		return nil
	})
	return digest
}

// vertex merges one encoded Vertex into the trace.
func (t *trace) vertex(b []byte) (*vertex, error) {
	var upd vertex
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			upd.digest = string(v)
		case num == 3 && typ == protowire.BytesType:
			upd.name = string(v)
		case num == 4 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return protowire.ParseError(n)
			}
			upd.cached = x != 0
		case num == 5 && typ == protowire.BytesType:
			upd.started, upd.startedAt = true, timestamp(v)
		case num == 6 && typ == protowire.BytesType:
			upd.completed, upd.doneAt = true, timestamp(v)
		case num == 7 && typ == protowire.BytesType:
			upd.err = string(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	vx := t.vertexes[upd.digest]
	if vx == nil {
		vx = &vertex{digest: upd.digest, num: len(t.order) + 1}
		t.vertexes[upd.digest] = vx
		t.order = append(t.order, vx)
	}
	if upd.name != "" {
		vx.name = upd.name
	}
	vx.cached = vx.cached || upd.cached
	if upd.started {
		vx.started, vx.startedAt = true, upd.startedAt
	}
	if upd.completed {
		vx.completed, vx.doneAt = true, upd.doneAt
	}
	if upd.err != "" {
		vx.err = upd.err
	}
	return vx, nil
}

// log adds one encoded VertexLog to its step and prints its complete lines.
func (t *trace) log(b []byte) error {
	var digest string
	var msg []byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			digest = string(v)
		case num == 4 && typ == protowire.BytesType:
			msg = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	vx := t.vertexes[digest]
	if vx == nil {
		vx = &vertex{digest: digest, num: len(t.order) + 1}
		t.vertexes[digest] = vx
		t.order = append(t.order, vx)
	}
	t.sayStart(vx)
	lines := strings.Split(vx.partial+string(msg), "\n")
	vx.partial = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		t.line(vx, l)
	}
	return nil
}

func (t *trace) line(vx *vertex, l string) {
	l = strings.TrimRight(ansiSeq.ReplaceAllString(l, ""), " \r\t")
	if strings.TrimSpace(l) == "" {
		return
	}
	fmt.Fprintf(t.out, "#%d %s\n", vx.num, l)
	vx.logs = append(vx.logs, strings.TrimSpace(l))
	if len(vx.logs) > tailLines {
		vx.logs = vx.logs[1:]
	}
}

func (t *trace) sayStart(vx *vertex) {
	if vx.said || vx.name == "" {
		return
	}
	vx.said = true
	fmt.Fprintf(t.out, "#%d %s\n", vx.num, vx.name)
}

func (t *trace) sayEnd(vx *vertex) {
	if vx.saidDone || !vx.said {
		return
	}
	switch {
	case vx.err != "":
		t.flush(vx)
		fmt.Fprintf(t.out, "#%d ERROR: %s\n", vx.num, vx.err)
	case vx.cached:
		fmt.Fprintf(t.out, "#%d CACHED\n", vx.num)
	case vx.completed:
		t.flush(vx)
		d := ""
		if vx.started && !vx.startedAt.IsZero() && !vx.doneAt.IsZero() {
			d = fmt.Sprintf(" %.1fs", vx.doneAt.Sub(vx.startedAt).Seconds())
		}
		fmt.Fprintf(t.out, "#%d DONE%s\n", vx.num, d)
	default:
		return
	}
	vx.saidDone = true
}

func (t *trace) flush(vx *vertex) {
	if vx.partial != "" {
		t.line(vx, vx.partial)
		vx.partial = ""
	}
}

// failed returns the step that failed (the last one with an error), or nil.
func (t *trace) failed() *vertex {
	var last *vertex
	for _, vx := range t.order {
		if vx.err != "" {
			t.flush(vx)
			last = vx
		}
	}
	return last
}

var ansiSeq = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// fields calls f for each field of the protobuf message b, with the
// field's bytes (length-delimited content, or the encoded varint/fixed value).
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			c, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = c, m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			v = b[:n]
		}
		if err := f(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// timestamp decodes a google.protobuf.Timestamp (zero when malformed).
func timestamp(b []byte) time.Time {
	var sec, nsec int64
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.VarintType {
			return nil
		}
		x, n := protowire.ConsumeVarint(v)
		if n < 0 {
			return protowire.ParseError(n)
		}
		switch num {
		case 1:
			sec = int64(x)
		case 2:
			nsec = int64(int32(x))
		}
		return nil
	})
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, nsec)
}

var errNoImageID = errors.New("the engine did not report an image ID")
