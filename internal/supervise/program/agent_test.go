package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestServeAgent(t *testing.T) {
	var in bytes.Buffer
	request := func(id string, body string, args ...string) {
		b, _ := json.Marshal(agentRequest{Container: id, Args: args, Size: int64(len(body))})
		in.Write(append(b, '\n'))
		in.WriteString(body)
	}
	request("aa", "first tar", "-port", "8080")
	request("bb", "second, partly read")
	request("cc", "")

	var got []string
	var out bytes.Buffer
	err := serveAgent(bufio.NewReader(&in), &out, nil, func(req agentRequest, tar io.Reader) agentAnswer {
		n := 6 // read some of the tar only: the agent must skip the rest
		if req.Container == "aa" {
			n = 100
		}
		b, _ := io.ReadAll(io.LimitReader(tar, int64(n)))
		got = append(got, fmt.Sprintf("%s %q %v", req.Container, b, req.Args))
		return agentAnswer{Code: len(got) - 1, Out: "done " + req.Container}
	})
	if err != nil {
		t.Fatalf("serveAgent: %v", err)
	}
	want := []string{`aa "first tar" [-port 8080]`, `bb "second" []`, `cc "" []`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	dec := json.NewDecoder(&out)
	for i, id := range []string{"aa", "bb", "cc"} {
		var a agentAnswer
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if a.Code != i || a.Out != "done "+id {
			t.Errorf("answer %d: %+v", i, a)
		}
	}
}

func TestServeAgentBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON": "update aa\n",
		"size":     `{"container":"aa","size":-1}` + "\n",
		"cut line": `{"container":"aa"`,
		"cut tar":  `{"container":"aa","size":100}` + "\nshort",
	} {
		t.Run(name, func(t *testing.T) {
			ran := 0
			err := serveAgent(bufio.NewReader(strings.NewReader(in)), io.Discard, nil, func(agentRequest, io.Reader) agentAnswer {
				ran++
				return agentAnswer{}
			})
			if name == "cut tar" {
				// The request ran (its update reads what there is and fails
				// on the cut tar itself); the agent then ends.
				if ran != 1 || err != nil {
					t.Errorf("ran %d times, err %v; want 1, nil (the input ended)", ran, err)
				}
				return
			}
			if err == nil || ran != 0 {
				t.Errorf("ran %d times, err %v; want no run and an error", ran, err)
			}
		})
	}
}

func TestContainerPIDRefusesPaths(t *testing.T) {
	for _, id := range []string{"", "../../etc", "ABC", "aa/bb", strings.Repeat("a", 129)} {
		if _, err := containerPID(id); err == nil || !strings.Contains(err.Error(), "not a runtime ID") {
			t.Errorf("containerPID(%q): %v, want an error saying it is not a runtime ID", id, err)
		}
	}
}

// TestAgentIdleGuard: the agent never exits between a request's line and
// its answer (the caller would run an applied update again), and exits
// only once idle has passed since the last answer.
func TestAgentIdleGuard(t *testing.T) {
	now := time.Unix(1000, 0)
	g := &idleGuard{idle: time.Minute, now: func() time.Time { return now }, last: now}

	var marks []bool
	var in bytes.Buffer
	b, _ := json.Marshal(agentRequest{Container: "aa", Size: 3})
	in.Write(append(b, '\n'))
	in.WriteString("tar")
	err := serveAgent(bufio.NewReader(&in), io.Discard, func(busy bool) {
		marks = append(marks, busy)
		g.mark(busy)
	}, func(agentRequest, io.Reader) agentAnswer {
		now = now.Add(2 * time.Minute) // a slow update: longer than idle
		if _, exit := g.expired(); exit {
			t.Error("the agent would exit while an update runs")
		}
		return agentAnswer{}
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(marks) != "[true false]" {
		t.Errorf("busy marks %v, want [true false]", marks)
	}
	now = now.Add(20 * time.Second)
	if wait, exit := g.expired(); exit || wait != 40*time.Second {
		t.Errorf("20 s after the answer: exit %v, next look in %v; want no exit, 40s", exit, wait)
	}
	now = now.Add(40 * time.Second)
	if _, exit := g.expired(); !exit {
		t.Error("a minute after the answer: no exit")
	}
}
