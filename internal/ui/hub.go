package ui

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// What a Hub keeps and sends.
const (
	// MaxSaves is how many saves the timeline keeps.
	MaxSaves = 20
	// MaxLogLines is how many recent log lines the Hub keeps per service.
	MaxLogLines = 200
	// MaxLogLine cuts longer log lines (bytes).
	MaxLogLine = 2000
	// clientBuffer is how many events may wait for one page before it is
	// dropped (its browser reconnects and gets a new Snapshot).
	clientBuffer = 256
	// logFlush is how long log lines gather before they go to the pages,
	// in one event.
	logFlush = 200 * time.Millisecond
)

// Hub holds what the page shows and fans every change out to the pages
// that are connected. The conductor feeds it (Status, SaveStarted, Step,
// Applied, SaveEnded, Log, TestResult); none of these wait for a page. Its
// methods are safe for concurrent use; the zero Hub is not ready, use
// NewHub.
type Hub struct {
	mu      sync.Mutex
	snap    Snapshot
	updates map[string]*Update  // each service's last update
	logs    map[string][]string // each service's recent lines
	pending map[string][]string // lines not sent yet
	save    int                 // index in snap.Saves of the running save, -1 when none
	nextID  int
	clients map[*client]struct{}
	now     func() time.Time
}

// client is one connected page: the SSE frames waiting for it.
type client struct {
	ch chan []byte
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{
		snap:    Snapshot{Parts: []Part{}, Services: []Service{}, Saves: []Save{}, Tests: []Test{}},
		updates: map[string]*Update{},
		logs:    map[string][]string{},
		save:    -1,
		clients: map[*client]struct{}{},
		now:     time.Now,
	}
}

// Status replaces the environment's status: its parts and services.
func (h *Hub) Status(st Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snap.Project, h.snap.Namespace, h.snap.Ready, h.snap.Kafka = st.Project, st.Namespace, st.Ready, st.Kafka
	h.snap.Checked = h.now()
	h.snap.Parts = append([]Part{}, st.Parts...)
	h.snap.Services = append([]Service{}, st.Services...)
	h.publishLocked()
}

// SaveStarted opens a new entry of the timeline: the steps that end until
// SaveEnded belong to it. trigger is "up", "save" or "config".
func (h *Hub) SaveStarted(trigger string, services []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endSaveLocked()
	h.nextID++
	h.snap.Saves = append(h.snap.Saves, Save{ID: h.nextID, Trigger: trigger, Services: slices.Clone(services),
		Start: h.now(), Running: true, OK: true, Steps: []Step{}})
	if over := len(h.snap.Saves) - MaxSaves; over > 0 {
		h.snap.Saves = slices.Delete(h.snap.Saves, 0, over)
	}
	h.save = len(h.snap.Saves) - 1
	h.publishLocked()
}

// Step records a step of the running save that started at start and took
// d; ok is false when it failed, stopped when Ctrl-C ended it. A step
// outside a save is not shown.
func (h *Hub) Step(name string, start time.Time, d time.Duration, ok, stopped bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.save < 0 {
		return
	}
	s := &h.snap.Saves[h.save]
	s.Steps = append(s.Steps, Step{Name: name, Offset: Millis(max(0, start.Sub(s.Start))), Duration: Millis(d), OK: ok || stopped, Stopped: stopped})
	if !ok && !stopped {
		s.OK = false
	}
	h.publishLocked()
}

// Applied records how a service was last updated.
func (h *Hub) Applied(u Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u.At.IsZero() {
		u.At = h.now()
	}
	if !u.OK && h.save >= 0 {
		h.snap.Saves[h.save].OK = false
	}
	h.updates[u.Service] = &u
	h.publishLocked()
}

// SaveEnded closes the running save.
func (h *Hub) SaveEnded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endSaveLocked()
	h.publishLocked()
}

func (h *Hub) endSaveLocked() {
	if h.save < 0 {
		return
	}
	s := &h.snap.Saves[h.save]
	s.Running, s.Duration = false, Millis(h.now().Sub(s.Start))
	h.save = -1
}

// TestResult records a declared test's result.
func (h *Hub) TestResult(t Test) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.At.IsZero() {
		t.At = h.now()
	}
	i := slices.IndexFunc(h.snap.Tests, func(x Test) bool { return x.Name == t.Name })
	if i < 0 {
		h.snap.Tests = append(h.snap.Tests, t)
		slices.SortFunc(h.snap.Tests, func(a, b Test) int { return strings.Compare(a.Name, b.Name) })
	} else {
		h.snap.Tests[i] = t
	}
	h.publishLocked()
}

// Log records a line of a service's pods' output. Lines go to the pages
// in batches, every logFlush at most.
func (h *Hub) Log(service, line string) {
	line = Clip(line, MaxLogLine)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs[service] = keepLast(append(h.logs[service], line), MaxLogLines)
	if h.pending == nil {
		h.pending = map[string][]string{}
		time.AfterFunc(logFlush, h.flushLogs)
	}
	h.pending[service] = keepLast(append(h.pending[service], line), MaxLogLines)
}

func (h *Hub) flushLogs() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushLocked()
}

func (h *Hub) flushLocked() {
	if len(h.pending) > 0 {
		h.sendLocked(frame("logs", h.pending))
		h.pending = nil
	}
}

func keepLast(lines []string, n int) []string {
	if over := len(lines) - n; over > 0 {
		return slices.Delete(lines, 0, over)
	}
	return lines
}

// Snapshot returns what the page shows now, with the recent log lines.
func (h *Hub) Snapshot() Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked(true)
}

func (h *Hub) snapshotLocked(logs bool) Snapshot {
	s := h.snap
	s.Parts = slices.Clone(s.Parts)
	s.Services = slices.Clone(s.Services)
	for i := range s.Services {
		if u := h.updates[s.Services[i].Name]; u != nil {
			u := *u
			s.Services[i].LastUpdate = &u
		}
	}
	s.Saves = slices.Clone(s.Saves)
	for i := range s.Saves {
		s.Saves[i].Steps = slices.Clone(s.Saves[i].Steps)
		if s.Saves[i].Running {
			s.Saves[i].Duration = Millis(h.now().Sub(s.Saves[i].Start))
		}
	}
	s.Tests = slices.Clone(s.Tests)
	if logs {
		s.Logs = make(map[string][]string, len(h.logs))
		for k, v := range h.logs {
			s.Logs[k] = slices.Clone(v)
		}
	}
	return s
}

// subscribe registers a page; its first frame is the whole Snapshot.
func (h *Hub) subscribe() *client {
	c := &client{ch: make(chan []byte, clientBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	// The lines waiting to be sent go to the other pages now: the new one
	// gets them in its snapshot.
	h.flushLocked()
	c.ch <- frame("snapshot", h.snapshotLocked(true))
	h.clients[c] = struct{}{}
	return c
}

// unsubscribe forgets a page that went away.
func (h *Hub) unsubscribe(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.ch)
	}
}

// clients returns how many pages are connected.
func (h *Hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *Hub) publishLocked() {
	h.sendLocked(frame("snapshot", h.snapshotLocked(false)))
}

// sendLocked queues f for every page; a page whose buffer is full is
// dropped: its channel closes, its handler returns, its browser reconnects.
func (h *Hub) sendLocked(f []byte) {
	for c := range h.clients {
		select {
		case c.ch <- f:
		default:
			delete(h.clients, c)
			close(c.ch)
		}
	}
}

// frame encodes one Server-Sent Event.
func frame(event string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return []byte("event: " + event + "\ndata: " + string(b) + "\n\n")
}

// Clip cuts s to at most n bytes at a character boundary and makes it
// valid UTF-8.
func Clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
