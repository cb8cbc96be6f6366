package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readEvent reads one Server-Sent Event (name and data) from r.
func readEvent(t *testing.T, r *bufio.Reader) (string, string) {
	t.Helper()
	var name, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func get(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestEventsSnapshotThenUpdate(t *testing.T) {
	hub := NewHub()
	hub.Status(Status{Project: "shop", Namespace: "shop", Services: []Service{{Name: "orders"}}})
	hub.Log("orders", "started")
	srv := httptest.NewServer((&Server{hub: hub}).Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := get(t, ctx, srv.URL+"/api/events")
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	name, data := readEvent(t, r)
	var s Snapshot
	if err := json.Unmarshal([]byte(data), &s); err != nil || name != "snapshot" {
		t.Fatalf("first event %s %s: %v", name, data, err)
	}
	if s.Project != "shop" || len(s.Services) != 1 || s.Services[0].Ready || len(s.Logs["orders"]) != 1 {
		t.Errorf("first snapshot %+v", s)
	}

	hub.SaveStarted("save", []string{"orders"})
	name, data = readEvent(t, r)
	s = Snapshot{}
	if err := json.Unmarshal([]byte(data), &s); err != nil || name != "snapshot" || len(s.Saves) != 1 || !s.Saves[0].Running {
		t.Fatalf("after SaveStarted: %s %s (%v)", name, data, err)
	}
	if s.Logs != nil {
		t.Errorf("an update carries the logs again: %v", s.Logs)
	}
	t0 := s.Saves[0].Start
	hub.Step("orders: image", t0.Add(10*time.Millisecond), 1500*time.Millisecond, true, false)
	hub.Applied(Update{Service: "orders", How: HowLive, Image: "devenv.local/shop-orders:2", Duration: Millis(2 * time.Second), OK: true})
	hub.SaveEnded()
	hub.Status(Status{Project: "shop", Namespace: "shop", Ready: true, Services: []Service{{Name: "orders", Ready: true, ReadyPods: 1, Desired: 1}}})
	for range 3 {
		readEvent(t, r)
	}
	_, data = readEvent(t, r)
	s = Snapshot{}
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		t.Fatal(err)
	}
	sv := s.Services[0]
	if !s.Ready || !sv.Ready || sv.LastUpdate == nil || sv.LastUpdate.How != HowLive || sv.LastUpdate.Image != "devenv.local/shop-orders:2" {
		t.Errorf("after the update: %+v, service %+v", s, sv)
	}
	sv0 := s.Saves[0]
	if sv0.Running || !sv0.OK || len(sv0.Steps) != 1 || sv0.Steps[0].Name != "orders: image" {
		t.Errorf("save %+v", sv0)
	}
	if !strings.Contains(data, `"duration":1500`) || !strings.Contains(data, `"offset":10`) {
		t.Errorf("durations are not milliseconds: %s", data)
	}

	hub.Log("orders", "a line")
	name, data = readEvent(t, r)
	if name != "logs" || data != `{"orders":["a line"]}` {
		t.Errorf("log event %s %s", name, data)
	}
}

func TestSlowClientIsDropped(t *testing.T) {
	hub := NewHub()
	c := hub.subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range clientBuffer + 10 {
			hub.Status(Status{Project: "p"})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a page that reads nothing blocks the Hub")
	}
	if n := hub.clientCount(); n != 0 {
		t.Errorf("%d pages still subscribed, want the slow one dropped", n)
	}
	n := 0
	for range c.ch {
		n++
	}
	if n != clientBuffer {
		t.Errorf("the dropped page got %d frames, want %d then a closed channel", n, clientBuffer)
	}
	hub.unsubscribe(c) // after a drop: no double close
}

type fakeKafka struct{ recs []Record }

func (f fakeKafka) Topics(context.Context) ([]Topic, error) {
	return []Topic{{Name: "transfers", EndOffsets: []int64{int64(len(f.recs))}}}, nil
}

func (f fakeKafka) Tail(ctx context.Context, topic string, back int64, each func(Record)) error {
	for _, r := range f.recs {
		each(r)
	}
	<-ctx.Done()
	return nil
}

func TestKafkaEndpoints(t *testing.T) {
	s := &Server{hub: NewHub()}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp := get(t, ctx, srv.URL+"/api/topics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"topics":[]`) || !strings.Contains(string(b), "no Kafka") {
		t.Errorf("topics without Kafka: %s", b)
	}

	s.SetKafka(fakeKafka{recs: []Record{{Partition: 0, Offset: 7, Value: `{"amount":5}`}}})
	resp = get(t, ctx, srv.URL+"/api/topics")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != `{"topics":[{"name":"transfers","endOffsets":[1]}]}` {
		t.Errorf("topics: %s", b)
	}
	resp = get(t, ctx, srv.URL+"/api/tail?topic=transfers")
	defer resp.Body.Close()
	name, data := readEvent(t, bufio.NewReader(resp.Body))
	if name != "record" || !strings.Contains(data, `"offset":7`) || !strings.Contains(data, `"value":"{\"amount\":5}"`) {
		t.Errorf("tail: %s %s", name, data)
	}
	resp = get(t, ctx, srv.URL+"/api/tail")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("tail without a topic: %s", resp.Status)
	}
}

// Every path the page uses, and a few it does not.
var paths = []string{"/", "/index.html", "/app.js", "/style.css", "/api/snapshot", "/api/events", "/api/topics", "/api/tail?topic=x", "/api/nope"}

func TestReadOnly(t *testing.T) {
	srv := httptest.NewServer((&Server{hub: NewHub()}).Handler())
	defer srv.Close()
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, p := range paths {
			req, _ := http.NewRequest(method, srv.URL+p, strings.NewReader("{}"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %s, want 405", method, p, resp.Status)
			}
		}
	}
}

func TestOnlyLoopbackHosts(t *testing.T) {
	h := (&Server{hub: NewHub()}).Handler()
	for host, want := range map[string]int{
		"127.0.0.1:7780":    http.StatusOK,
		"localhost:7780":    http.StatusOK,
		"[::1]:7780":        http.StatusOK,
		"evil.example:7780": http.StatusForbidden,
		"192.168.1.4:7780":  http.StatusForbidden,
	} {
		req := httptest.NewRequest(http.MethodGet, "/api/snapshot", nil)
		req.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
}

func TestListenLoopbackNextFreePort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	s, err := Listen(NewHub(), Options{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	addr := s.ln.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("bound to %s, want 127.0.0.1", addr.IP)
	}
	if s.Port() <= port || s.Port() >= port+portTries {
		t.Errorf("port %d taken: got %d, want one of the next %d", port, s.Port(), portTries-1)
	}
	if want := "http://127.0.0.1:" + strconv.Itoa(s.Port()) + "/"; s.URL() != want {
		t.Errorf("URL %s, want %s", s.URL(), want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	resp := get(t, context.Background(), s.URL())
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "<title>devenv</title>") {
		t.Errorf("GET /: %s %.80s", resp.Status, b)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// An open event stream does not hold Serve up when ctx ends.
	stream := get(t, context.Background(), s.URL()+"api/events")
	defer stream.Body.Close()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}

// The page asks for nothing outside its origin: no http(s) URL, no
// protocol-relative one, in any asset.
func TestAssetsStayOnOrigin(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:|wss?:|ftp:)//|(src|href|url)\s*[=(]\s*["']?//`)
	n := 0
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers outside the page's origin: %q", p, m)
		}
		if strings.Contains(string(b), "@import") {
			t.Errorf("%s imports a stylesheet", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("%d assets embedded, want index.html, app.js, style.css", n)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // not inside é
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
