package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/devenv-tool/devenv/internal/log"
)

// DefaultPort is the first port the page is served on; when it is taken,
// the next free one is used.
const DefaultPort = 7780

// portTries is how many ports from the asked one Listen tries.
const portTries = 20

// Tail limits.
const (
	// TailBack is how many records before the end of each partition the
	// live tail starts with.
	TailBack = 20
	// MaxValue cuts longer keys and values of records (bytes).
	MaxValue = 1000
	// tailBuffer is how many records may wait for one page; more are
	// skipped (and counted) rather than slow the reader.
	tailBuffer = 256
)

//go:embed static
var static embed.FS

// Kafka reads the environment's broker for the page: its topics and a
// live tail of one. Both are called only while a page asks.
type Kafka interface {
	// Topics returns the broker's topics with their end offsets.
	Topics(ctx context.Context) ([]Topic, error)
	// Tail calls each for every record of topic from back records before
	// the end of each partition on, until ctx ends.
	Tail(ctx context.Context, topic string, back int64, each func(Record)) error
}

// Options tune a Server.
type Options struct {
	// Port is the first port tried on 127.0.0.1; 0 means DefaultPort. A
	// taken port: the next free one (Server.URL says which).
	Port int
	// Log receives the server's errors; nil is silent.
	Log *log.Logger
}

// Server serves the page of a Hub on 127.0.0.1.
type Server struct {
	hub *Hub
	ln  net.Listener
	log *log.Logger

	mu    sync.Mutex
	kafka Kafka
}

// Listen binds a Server for hub to 127.0.0.1 (loopback only), on
// opts.Port or, when that is taken, the next free port of the few after it.
// Serve serves it.
func Listen(hub *Hub, opts Options) (*Server, error) {
	port := opts.Port
	if port == 0 {
		port = DefaultPort
	}
	lg := opts.Log
	if lg == nil {
		lg = log.Nop()
	}
	var first error
	for p := port; p < port+portTries && p <= 65535; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err == nil {
			return &Server{hub: hub, ln: ln, log: lg}, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, fmt.Errorf("serving the browser view: no free port on 127.0.0.1 from %d to %d: %w", port, port+portTries-1, first)
}

// Hub is the Hub whose page the Server serves.
func (s *Server) Hub() *Hub { return s.hub }

// URL is the page's address.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Port is the port the Server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// SetKafka gives the page the environment's broker (nil: none). The page
// asks for topics only once it is set.
func (s *Server) SetKafka(k Kafka) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kafka = k
}

func (s *Server) kafkaSource() Kafka {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kafka
}

// Serve serves the page until ctx ends, then closes the listener and the
// open streams. It returns nil when ctx ended.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // the streams end with ctx (BaseContext)
		_ = srv.Close()
	}()
	err := srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return fmt.Errorf("serving the browser view: %w", err)
}

// Handler is the Server's HTTP handler: the page, its assets, and the
// read-only API. It answers GET and HEAD only, and only requests addressed
// to a loopback name (a page of another site that a DNS name of its own
// leads here cannot read it).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(assets))
	mux.HandleFunc("GET /api/snapshot", s.snapshot)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /api/topics", s.topics)
	mux.HandleFunc("GET /api/tail", s.tail)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET only", http.StatusMethodNotAllowed)
			return
		}
		if !loopbackHost(r.Host) {
			http.Error(w, "only for 127.0.0.1", http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a request's Host names this machine's
// loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) snapshot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.hub.Snapshot())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// sseKeepAlive is how often an idle stream gets a comment line, so that a
// page that went away is noticed.
const sseKeepAlive = 15 * time.Second

// startSSE writes the headers of an event stream.
func startSSE(w http.ResponseWriter) (http.Flusher, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return f, true
}

// events streams the Hub: a snapshot first, then every change.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	f, ok := startSSE(w)
	if !ok {
		return
	}
	c := s.hub.subscribe()
	defer s.hub.unsubscribe(c)
	ping := time.NewTicker(sseKeepAlive)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b, ok := <-c.ch:
			if !ok {
				return // too slow: dropped; the browser reconnects
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			f.Flush()
		case <-ping.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			f.Flush()
		}
	}
}

// topicsAnswer is what GET /api/topics returns.
type topicsAnswer struct {
	Topics []Topic `json:"topics"`
	Error  string  `json:"error,omitempty"`
}

func (s *Server) topics(w http.ResponseWriter, r *http.Request) {
	k := s.kafkaSource()
	if k == nil {
		writeJSON(w, http.StatusOK, topicsAnswer{Topics: []Topic{}, Error: "no Kafka in this environment (yet)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	ts, err := k.Topics(ctx)
	if err != nil {
		writeJSON(w, http.StatusOK, topicsAnswer{Topics: []Topic{}, Error: err.Error()})
		return
	}
	if ts == nil {
		ts = []Topic{}
	}
	writeJSON(w, http.StatusOK, topicsAnswer{Topics: ts})
}

// tail streams the records of ?topic= as "record" events, from TailBack
// records before the end on; an "error" event says why it stopped, a
// "skipped" event how many records a slow page missed.
func (s *Server) tail(w http.ResponseWriter, r *http.Request) {
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		http.Error(w, "no topic: ?topic=NAME", http.StatusBadRequest)
		return
	}
	k := s.kafkaSource()
	if k == nil {
		http.Error(w, "no Kafka in this environment", http.StatusNotFound)
		return
	}
	f, ok := startSSE(w)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	recs := make(chan Record, tailBuffer)
	var mu sync.Mutex
	skipped := 0
	done := make(chan error, 1)
	go func() {
		done <- k.Tail(ctx, topic, TailBack, func(rec Record) {
			select {
			case recs <- rec:
			default:
				mu.Lock()
				skipped++
				mu.Unlock()
			}
		})
	}()
	ping := time.NewTicker(sseKeepAlive)
	defer ping.Stop()
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		f.Flush()
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-done:
			msg := "the tail ended"
			if err != nil {
				msg = err.Error()
				s.log.Debugf("browser view: tail of topic %s: %v", topic, err)
			}
			write(frame("error", map[string]string{"error": msg}))
			return
		case rec := <-recs:
			if !write(frame("record", rec)) {
				return
			}
			mu.Lock()
			n := skipped
			skipped = 0
			mu.Unlock()
			if n > 0 && !write(frame("skipped", map[string]int{"skipped": n})) {
				return
			}
		case <-ping.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		}
	}
}
