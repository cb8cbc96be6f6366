package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAccounts is an in-memory account service speaking the real HTTP API.
type fakeAccounts struct {
	mu       sync.Mutex
	balances map[string]int64
	calls    []string
}

func (f *fakeAccounts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/accounts/"), "/")
	var body struct{ Amount int64 }
	if len(parts) != 2 || r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&body) != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	id, op := parts[0], parts[1]
	f.calls = append(f.calls, op+" "+id)
	bal, ok := f.balances[id]
	switch {
	case !ok:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"account `+id+` not found"}`)
	case op == "withdraw" && bal < body.Amount:
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":"insufficient funds"}`)
	case op == "withdraw":
		f.balances[id] = bal - body.Amount
	case op == "deposit":
		f.balances[id] = bal + body.Amount
	}
}

type fakePublisher struct {
	err    error
	values [][]byte
}

func (p *fakePublisher) Publish(_ context.Context, _, value []byte) error {
	if p.err != nil {
		return p.err
	}
	p.values = append(p.values, value)
	return nil
}

func TestTransfer(t *testing.T) {
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		body       string
		pubErr     error
		wantStatus int
		wantErr    string // substring of the "error" field
		wantBal    map[string]int64
		wantEvents int
	}{
		{name: "ok", body: `{"from":"A-1","to":"A-2","amount":300}`, wantStatus: 201,
			wantBal: map[string]int64{"A-1": 700, "A-2": 300}, wantEvents: 1},
		{name: "insufficient funds", body: `{"from":"A-2","to":"A-1","amount":1}`, wantStatus: 409,
			wantErr: "insufficient funds", wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
		{name: "unknown source", body: `{"from":"nope","to":"A-1","amount":1}`, wantStatus: 404,
			wantErr: "not found", wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
		{name: "unknown target is refunded", body: `{"from":"A-1","to":"nope","amount":5}`, wantStatus: 404,
			wantErr: "refunded", wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
		{name: "kafka down", body: `{"from":"A-1","to":"A-2","amount":10}`, pubErr: errors.New("broker unreachable"),
			wantStatus: 503, wantErr: "broker unreachable", wantBal: map[string]int64{"A-1": 990, "A-2": 10}},
		{name: "bad json", body: `{"from":`, wantStatus: 400, wantErr: "request body",
			wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
		{name: "unknown field", body: `{"from":"A-1","to":"A-2","amount":1,"currency":"EUR"}`, wantStatus: 400,
			wantErr: "currency", wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
		{name: "zero amount", body: `{"from":"A-1","to":"A-2","amount":0}`, wantStatus: 400,
			wantErr: `"amount"`, wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
		{name: "same account", body: `{"from":"A-1","to":"A-1","amount":1}`, wantStatus: 400,
			wantErr: "two accounts", wantBal: map[string]int64{"A-1": 1000, "A-2": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			accounts := &fakeAccounts{balances: map[string]int64{"A-1": 1000, "A-2": 0}}
			as := httptest.NewServer(accounts)
			defer as.Close()
			pub := &fakePublisher{err: tc.pubErr}
			s := &server{accounts: newAccountClient(as.URL), events: pub,
				log: log.New(io.Discard, "", 0), now: func() time.Time { return fixed }}

			rec := httptest.NewRecorder()
			s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/transfers", strings.NewReader(tc.body)))

			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			var got struct {
				transferEvent
				Error string         `json:"error"`
				Event *transferEvent `json:"event"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("decoding response %q: %v", rec.Body, err)
			}
			if !strings.Contains(got.Error, tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", got.Error, tc.wantErr)
			}
			for id, want := range tc.wantBal {
				if accounts.balances[id] != want {
					t.Errorf("balance of %s = %d, want %d (calls %v)", id, accounts.balances[id], want, accounts.calls)
				}
			}
			if len(pub.values) != tc.wantEvents {
				t.Fatalf("published %d events, want %d", len(pub.values), tc.wantEvents)
			}
			if tc.wantStatus == 201 {
				var ev transferEvent
				if err := json.Unmarshal(pub.values[0], &ev); err != nil {
					t.Fatal(err)
				}
				if ev != got.transferEvent || ev.From != "A-1" || ev.To != "A-2" || ev.Amount != 300 || !ev.Time.Equal(fixed) || ev.ID == "" {
					t.Errorf("published %+v, answered %+v", ev, got.transferEvent)
				}
			}
			if tc.wantStatus == 503 && (got.Event == nil || got.Event.Amount != 10) {
				t.Errorf("503 answer should carry the unpublished event, got %+v", got.Event)
			}
		})
	}
}

func TestHealthAndVersion(t *testing.T) {
	s := &server{log: log.New(io.Discard, "", 0), now: time.Now}
	for path, want := range map[string]string{"/health": "ok\n", "/version": version + "\n"} {
		rec := httptest.NewRecorder()
		s.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, rec.Code, rec.Body, want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", env: map[string]string{},
			want: config{Port: "8080", AccountURL: "http://account:8080", Brokers: []string{"kafka:9092"}, Topic: "transfers"}},
		{name: "set", env: map[string]string{"PORT": "9000", "ACCOUNT_URL": "http://127.0.0.1:1/", "BROKER": "a:1, b:2", "TOPIC": "t"},
			want: config{Port: "9000", AccountURL: "http://127.0.0.1:1", Brokers: []string{"a:1", "b:2"}, Topic: "t"}},
		{name: "bad port", env: map[string]string{"PORT": "http"}, wantErr: "PORT="},
		{name: "bad account url", env: map[string]string{"ACCOUNT_URL": "account:8080"}, wantErr: "ACCOUNT_URL="},
		{name: "broker without port", env: map[string]string{"BROKER": "kafka"}, wantErr: "BROKER"},
		{name: "empty broker list", env: map[string]string{"BROKER": " , "}, wantErr: "BROKER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Port != tc.want.Port || got.AccountURL != tc.want.AccountURL || got.Topic != tc.want.Topic ||
				strings.Join(got.Brokers, ",") != strings.Join(tc.want.Brokers, ",") {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
