package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A node agent is devenv's supervisor on a kind node, run as "supervise
// agent" through one docker exec that stays open while devenv watches. It
// takes one live update after another and runs each as nodeUpdateScript
// does (the same nsenter, the same node file, the same "update"), so a
// save costs no docker exec of its own: 0.15-0.2 s less per update on a
// small machine. It ends when its connection closes (Close, or this
// process ending) or after 15 minutes without a request. Any trouble with
// it falls back to the one-shot exec, which is the reference.
//
// The wire format is internal/supervise/program/agent.go's: a JSON line
// per request followed by the tar, a JSON line per answer.

// agentRequest and agentAnswer are the agent's wire format.
type agentRequest struct {
	Container string   `json:"container"`
	Args      []string `json:"args"`
	Size      int64    `json:"size"`
}

type agentAnswer struct {
	Code int    `json:"code"`
	Out  string `json:"out"`
}

// errAgentGone means the agent's session broke before it answered; the
// update may or may not have run (running it again is harmless).
var errAgentGone = errors.New("node agent gone")

// nodeAgent is one agent session.
type nodeAgent struct {
	mu       sync.Mutex // one request at a time
	att      client.ExecAttachResult
	answers  *bufio.Reader // the agent's standard output
	stderr   *tailWriter
	answered bool          // it has answered a request: it works on this node
	ended    chan struct{} // closed when its output ended: it exited
}

// startAgent starts "sup agent" on node.
func startAgent(ctx context.Context, docker *client.Client, node, sup string) (*nodeAgent, error) {
	created, err := docker.ExecCreate(ctx, node, client.ExecCreateOptions{Cmd: []string{sup, "agent"}, AttachStdin: true, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, err
	}
	att, err := docker.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	a := &nodeAgent{att: att, answers: bufio.NewReader(pr), stderr: &tailWriter{max: 2048}, ended: make(chan struct{})}
	go func() {
		_, err := stdcopy.StdCopy(pw, a.stderr, att.Reader)
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
		// The agent exited: the engine may go on taking its input for
		// minutes (Docker 20.10 did), so a request being written would
		// hang. Closing the connection fails that write now.
		close(a.ended)
		a.close()
	}()
	return a, nil
}

// update runs one live update through the agent. An error wrapping
// errAgentGone means the session broke; ctx's error, that ctx ended (the
// session is closed then too).
func (a *nodeAgent) update(ctx context.Context, container string, args []string, files []byte) (string, int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.ended:
		return "", 0, fmt.Errorf("%w: it exited", errAgentGone)
	default:
	}
	stop := context.AfterFunc(ctx, a.close)
	defer stop()
	line, err := json.Marshal(agentRequest{Container: container, Args: args, Size: int64(len(files))})
	if err != nil {
		return "", 0, err
	}
	if _, err = a.att.Conn.Write(append(line, '\n')); err == nil {
		_, err = a.att.Conn.Write(files)
	}
	var ans []byte
	if err == nil {
		ans, err = a.answers.ReadBytes('\n')
	}
	if ctx.Err() != nil {
		return "", 0, ctx.Err()
	}
	if err != nil {
		a.close()
		if tail := strings.TrimSpace(a.stderr.String()); tail != "" {
			err = fmt.Errorf("%w: %s", err, lastLines(tail, 1))
		}
		return "", 0, fmt.Errorf("%w: %w", errAgentGone, err)
	}
	var out agentAnswer
	if err := json.Unmarshal(ans, &out); err != nil {
		a.close()
		return "", 0, fmt.Errorf("%w: its answer %q: %w", errAgentGone, lastLines(string(ans), 1), err)
	}
	a.answered = true
	return out.Out, out.Code, nil
}

// close ends the session: the agent sees the end of its input and exits.
func (a *nodeAgent) close() { a.att.Close() }

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append([]byte(nil), w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// viaAgent runs one live update through node's agent, starting one when
// none runs. ok is false when the agent cannot be used (it did not start,
// or broke before it ever answered on this node, which then is not asked
// again): the caller runs the one-shot exec instead.
func (c *Cluster) viaAgent(ctx context.Context, docker *client.Client, t LiveTarget, sup string, args []string, files []byte) (out string, code int, err error, ok bool) {
	for attempt := 0; attempt < 2; attempt++ {
		if c.agentRefused(t.Node) {
			return "", 0, nil, false
		}
		var a *nodeAgent
		if a, err = c.agentFor(ctx, docker, t.Node, sup); err != nil {
			if ctx.Err() != nil {
				return "", 0, ctx.Err(), true
			}
			c.log.Debugf("node %s: agent not started, one exec per update: %v", t.Node, err)
			return "", 0, nil, false
		}
		out, code, err = a.update(ctx, t.ContainerID, args, files)
		if err == nil || !errors.Is(err, errAgentGone) {
			if err != nil {
				c.dropAgent(t.Node, a)
			}
			return out, code, err, true
		}
		c.dropAgent(t.Node, a)
		if !a.answered {
			// It never worked here: do not start one again.
			c.log.Debugf("node %s: agent failed, one exec per update: %v", t.Node, err)
			c.nodes.mu.Lock()
			if c.nodes.noAgent == nil {
				c.nodes.noAgent = map[string]bool{}
			}
			c.nodes.noAgent[t.Node] = true
			c.nodes.mu.Unlock()
			return "", 0, nil, false
		}
		// It worked before (it ended when idle, or the node restarted):
		// once more with a new one.
		c.log.Debugf("node %s: agent gone, starting another: %v", t.Node, err)
	}
	return "", 0, nil, false
}

// agentRefused reports whether an agent did not work on node before.
func (c *Cluster) agentRefused(node string) bool {
	c.nodes.mu.Lock()
	defer c.nodes.mu.Unlock()
	return c.nodes.noAgent[node]
}

// agentFor returns node's agent, starting one when none runs.
func (c *Cluster) agentFor(ctx context.Context, docker *client.Client, node, sup string) (*nodeAgent, error) {
	c.nodes.starting.Lock()
	defer c.nodes.starting.Unlock()
	c.nodes.mu.Lock()
	a := c.nodes.agents[node]
	c.nodes.mu.Unlock()
	if a != nil {
		return a, nil
	}
	a, err := startAgent(ctx, docker, node, sup)
	if err != nil {
		return nil, err
	}
	c.nodes.mu.Lock()
	if c.nodes.agents == nil {
		c.nodes.agents = map[string]*nodeAgent{}
	}
	c.nodes.agents[node] = a
	c.nodes.mu.Unlock()
	return a, nil
}

// PrepareLiveUpdates readies the cluster's kind nodes for live updates
// ahead of the first one: devenv's supervisor copied onto each and its
// agent started. The first LiveUpdate otherwise does both itself (0.3-0.5
// s on a small machine, once per node). Nodes that are not kind node
// containers of docker are left as they are; so is a node where an agent
// did not work before.
func (c *Cluster) PrepareLiveUpdates(ctx context.Context, docker *client.Client) error {
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the nodes of cluster %q: %w", c.Name, err)
	}
	var errs []error
	for _, n := range nodes.Items {
		if c.liveVia(ctx, docker, n.Name) != LiveNode {
			continue
		}
		if c.agentRefused(n.Name) {
			continue
		}
		sup, err := c.nodeSupervisor(ctx, docker, n.Name)
		if err == nil {
			_, err = c.agentFor(ctx, docker, n.Name, sup)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// dropAgent forgets a (closed) agent of node.
func (c *Cluster) dropAgent(node string, a *nodeAgent) {
	a.close()
	c.nodes.mu.Lock()
	if c.nodes.agents[node] == a {
		delete(c.nodes.agents, node)
	}
	c.nodes.mu.Unlock()
}

// Close ends the sessions LiveUpdate keeps open to the cluster's nodes.
// The Cluster stays usable: a later LiveUpdate opens them again.
func (c *Cluster) Close() error {
	c.nodes.mu.Lock()
	agents := c.nodes.agents
	c.nodes.agents = nil
	c.nodes.mu.Unlock()
	for _, a := range agents {
		a.close()
	}
	return nil
}
