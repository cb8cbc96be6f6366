package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// "supervise agent" runs on a kind node, as root, started by devenv with
// docker exec and kept open while devenv watches: it takes one live update
// after another on its standard input and runs each as the one-shot way
// does (nsenter into the container's namespaces, then "supervise update
// -root /proc/PID/root" with this same file), without a docker exec per
// save (0.15-0.2 s each on a small machine).
//
// Each request is one JSON line, agentRequest, followed by exactly Size
// bytes: the tar for "update". Each answer is one JSON line, agentAnswer:
// the exit code and output of "update" (10 when the container does not
// run on this node). The agent ends at the end of its input, on a request
// it cannot read (it answers nothing then: the caller sees the stream end),
// and after -idle without a request.

// agentRequest is one live update for the agent.
type agentRequest struct {
	Container string   `json:"container"` // the container's runtime ID (hex)
	Args      []string `json:"args"`      // the arguments after "update -root DIR"
	Size      int64    `json:"size"`      // the bytes of the tar that follow the line
}

// agentAnswer is the agent's answer to one request.
type agentAnswer struct {
	Code int    `json:"code"`
	Out  string `json:"out"`
}

// maxRequest is the largest tar the agent takes (8 GiB).
const maxRequest = 8 << 30

// agent is "supervise agent".
func agent(args []string) int {
	flags := flag.NewFlagSet("agent", flag.ContinueOnError)
	idle := flags.Duration("idle", 15*time.Minute, "exit after this long without a request")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervise agent:", err)
		return 1
	}
	g := &idleGuard{idle: *idle, now: time.Now, last: time.Now()}
	var timer *time.Timer
	timer = time.AfterFunc(*idle, func() {
		wait, exit := g.expired()
		if exit {
			os.Exit(0) // g stays locked: no request starts meanwhile
		}
		timer.Reset(wait)
	})
	err = serveAgent(bufio.NewReaderSize(os.Stdin, 64<<10), os.Stdout, g.mark, func(req agentRequest, tar io.Reader) agentAnswer {
		return runUpdate(self, req, tar)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervise agent:", err)
		return 1
	}
	return 0
}

// serveAgent reads requests from in and writes answers to out until in
// ends (nil) or a request cannot be read. run gets each request with its
// tar; serveAgent reads whatever of the tar run left, so the next request
// starts where it should.
//
// busy, if not nil, is told true as soon as a request's line has come and
// false once its answer is written: the agent's idle exit waits for that,
// as an update applied but not answered would be run again by the caller.
func serveAgent(in *bufio.Reader, out io.Writer, busy func(bool), run func(agentRequest, io.Reader) agentAnswer) error {
	if busy == nil {
		busy = func(bool) {}
	}
	for {
		line, err := in.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return nil
		}
		busy(true)
		if err != nil {
			return fmt.Errorf("reading a request: %w", err)
		}
		var req agentRequest
		if err := json.Unmarshal(line, &req); err != nil {
			return fmt.Errorf("reading a request: %w", err)
		}
		if req.Size < 0 || req.Size > maxRequest {
			return fmt.Errorf("request for container %s: size %d out of range", req.Container, req.Size)
		}
		tar := io.LimitReader(in, req.Size)
		ans := run(req, tar)
		if _, err := io.Copy(io.Discard, tar); err != nil {
			return fmt.Errorf("reading a request's files: %w", err)
		}
		b, err := json.Marshal(ans)
		if err != nil {
			return err
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("answering: %w", err)
		}
		busy(false)
	}
}

// idleGuard decides the agent's idle exit: not while a request is between
// its line and its answer, and not before idle has passed since the last
// answer.
type idleGuard struct {
	mu   sync.Mutex
	busy bool
	last time.Time
	idle time.Duration
	now  func() time.Time
}

// mark records a request's start (true) or its answer (false).
func (g *idleGuard) mark(busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = busy
	g.last = g.now()
}

// expired reports whether the agent may exit now. If so, g stays locked,
// so no request can start before the exit; if not, wait is how long until
// the next look.
func (g *idleGuard) expired() (wait time.Duration, exit bool) {
	g.mu.Lock()
	if g.busy {
		g.mu.Unlock()
		return g.idle, false
	}
	if left := g.idle - g.now().Sub(g.last); left > 0 {
		g.mu.Unlock()
		return left, false
	}
	return 0, true
}

// containerPID returns the node PID of the container's first process:
// containerd's record of it, else crictl's answer.
func containerPID(id string) (string, error) {
	if id == "" || len(id) > 128 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("container ID %q is not a runtime ID", id)
	}
	b, err := os.ReadFile("/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id + "/init.pid")
	if err != nil {
		b, err = exec.Command("crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}", id).Output()
	}
	pid := strings.TrimSpace(string(b))
	if n, perr := strconv.Atoi(pid); err != nil || perr != nil || n <= 0 {
		return "", fmt.Errorf("container %s is not running on this node", id)
	}
	return pid, nil
}

// runUpdate runs "update" for req in its container's namespaces, as
// nodeUpdateScript (cluster/livenode.go) does: nsenter without the mount
// namespace, then self, the node's file, which enters the container's
// root itself.
func runUpdate(self string, req agentRequest, tar io.Reader) agentAnswer {
	pid, err := containerPID(req.Container)
	if err != nil {
		return agentAnswer{Code: 10, Out: err.Error()}
	}
	args := append([]string{"-t", pid, "-u", "-i", "-n", "-p", self, "update", "-root", "/proc/" + pid + "/root"}, req.Args...)
	var out bytes.Buffer
	cmd := exec.Command("nsenter", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tar, &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return agentAnswer{Code: 0, Out: out.String()}
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return agentAnswer{Code: exit.ExitCode(), Out: out.String()}
	default:
		return agentAnswer{Code: 1, Out: strings.TrimSpace(out.String() + "\nrunning nsenter: " + err.Error())}
	}
}
