package dockerx

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// frame is one chunk of the engine's multiplexed log stream (1 stdout, 2 stderr).
func frame(stream byte, text string) []byte {
	h := make([]byte, 8, 8+len(text))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(text)))
	return append(h, text...)
}

func TestCopyLogs(t *testing.T) {
	var tails []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/containers/abc/logs") {
			http.Error(w, `{"message":"no such container"}`, http.StatusNotFound)
			return
		}
		tails = append(tails, r.URL.Query().Get("tail"))
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		_, _ = w.Write(frame(1, "started\n"))
		_, _ = w.Write(frame(2, "warning: slow\n"))
		_, _ = w.Write(frame(1, "ready\n"))
	}))
	defer srv.Close()
	cli, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.47"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	var b strings.Builder
	if err := CopyLogs(context.Background(), cli, "abc", 2000, &b); err != nil {
		t.Fatal(err)
	}
	if want := "started\nwarning: slow\nready\n"; b.String() != want {
		t.Errorf("CopyLogs wrote %q, want %q", b.String(), want)
	}
	if err := CopyLogs(context.Background(), cli, "abc", 0, &b); err != nil {
		t.Fatal(err)
	}
	if len(tails) != 2 || tails[0] != "2000" || (tails[1] != "" && tails[1] != "all") {
		t.Errorf("tail asked for: %q, want 2000 then all", tails)
	}
	if err := CopyLogs(context.Background(), cli, "gone", 10, &b); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("CopyLogs of a missing container = %v, want an error naming it", err)
	}
}
