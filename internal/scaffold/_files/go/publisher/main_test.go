package main

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRoutes(t *testing.T) {
	var got []byte
	produce := func(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
		if string(rs[0].Value) == "fail" {
			return kgo.ProduceResults{{Record: rs[0], Err: errors.New("no broker")}}
		}
		got = rs[0].Value
		rs[0].Topic, rs[0].Offset = "messages", 7
		return kgo.ProduceResults{{Record: rs[0]}}
	}
	srv := httptest.NewServer(routes(produce, "messages", log.New(io.Discard, "", 0)))
	defer srv.Close()

	for _, tc := range []struct {
		method, path, body string
		status             int
		answer             string
	}{
		{"GET", "/health", "", 200, "ok"},
		{"GET", "/version", "", 200, version},
		{"POST", "/messages", "hello", 201, `"offset":7`},
		{"POST", "/messages", "", 400, "request body"},
		{"POST", "/messages", "fail", 503, "no broker"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.answer) {
			t.Errorf("%s %s %q: %d %q, want %d with %q", tc.method, tc.path, tc.body, resp.StatusCode, b, tc.status, tc.answer)
		}
	}
	if string(got) != "hello" {
		t.Errorf("published %q, want hello", got)
	}
}
