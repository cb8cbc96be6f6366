package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"
)

// accountAPI is the part of the account service a transfer needs.
type accountAPI interface {
	Withdraw(ctx context.Context, id string, amount int64) error
	Deposit(ctx context.Context, id string, amount int64) error
}

// publisher sends one event to Kafka.
type publisher interface {
	Publish(ctx context.Context, key, value []byte) error
}

// transferRequest is the body of POST /transfers.
type transferRequest struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

// transferEvent is what a completed transfer publishes and answers.
type transferEvent struct {
	ID     string    `json:"id"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Amount int64     `json:"amount"`
	Time   time.Time `json:"time"`
}

// server holds the HTTP handlers.
type server struct {
	accounts accountAPI
	events   publisher
	audit    *audit // nil: no GET /audit
	log      *log.Logger
	now      func() time.Time
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, version)
	})
	mux.HandleFunc("POST /transfers", s.transfer)
	if s.audit != nil {
		mux.HandleFunc("GET /audit", s.audit.serveHTTP)
	}
	return mux
}

func (s *server) transfer(w http.ResponseWriter, r *http.Request) {
	req, err := decodeTransfer(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	ctx := r.Context()
	if err := s.accounts.Withdraw(ctx, req.From, req.Amount); err != nil {
		status := http.StatusBadGateway
		var ae *accountError
		if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusConflict || ae.Status == http.StatusBadRequest) {
			status = ae.Status
		}
		s.log.Printf("transfer %s -> %s (%d): withdraw failed: %v", req.From, req.To, req.Amount, err)
		writeError(w, status, fmt.Sprintf("withdrawing %d from %s: %v", req.Amount, req.From, err), nil)
		return
	}
	if err := s.accounts.Deposit(ctx, req.To, req.Amount); err != nil {
		s.log.Printf("transfer %s -> %s (%d): deposit failed, refunding %s: %v", req.From, req.To, req.Amount, req.From, err)
		msg := fmt.Sprintf("depositing %d into %s: %v", req.Amount, req.To, err)
		// Put the money back; use a fresh context so a cancelled request does not strand it.
		refundCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := s.accounts.Deposit(refundCtx, req.From, req.Amount); rerr != nil {
			s.log.Printf("transfer %s -> %s (%d): REFUND FAILED: %v", req.From, req.To, req.Amount, rerr)
			writeError(w, http.StatusBadGateway, msg+fmt.Sprintf("; refunding %s also failed: %v", req.From, rerr), nil)
			return
		}
		status := http.StatusBadGateway
		var ae *accountError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			status = http.StatusNotFound
		}
		writeError(w, status, msg+fmt.Sprintf(" (the withdrawal from %s was refunded)", req.From), nil)
		return
	}
	ev := transferEvent{ID: newID(), From: req.From, To: req.To, Amount: req.Amount, Time: s.now().UTC()}
	value, err := json.Marshal(ev)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding event: "+err.Error(), nil)
		return
	}
	if err := s.events.Publish(ctx, []byte(ev.From), value); err != nil {
		s.log.Printf("transfer %s: event not published: %v", ev.ID, err)
		writeError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("the accounts were updated but the transfer event was not published: %v", err), &ev)
		return
	}
	s.log.Printf("transfer %s: %s -> %s (%d) done", ev.ID, ev.From, ev.To, ev.Amount)
	writeJSON(w, http.StatusCreated, ev)
}

// decodeTransfer reads and checks a transfer request.
func decodeTransfer(r io.Reader) (transferRequest, error) {
	var req transferRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("request body: %w (want {\"from\":\"A-1\",\"to\":\"A-2\",\"amount\":100})", err)
	}
	req.From, req.To = strings.TrimSpace(req.From), strings.TrimSpace(req.To)
	switch {
	case req.From == "":
		return req, errors.New(`field "from" is missing or empty`)
	case req.To == "":
		return req, errors.New(`field "to" is missing or empty`)
	case req.From == req.To:
		return req, fmt.Errorf(`fields "from" and "to" are both %q: a transfer needs two accounts`, req.From)
	case req.Amount <= 0:
		return req, fmt.Errorf(`field "amount" must be a whole number greater than 0, got %d`, req.Amount)
	}
	return req, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

func writeText(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s+"\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, ev *transferEvent) {
	writeJSON(w, status, struct {
		Error string         `json:"error"`
		Event *transferEvent `json:"event,omitempty"`
	}{msg, ev})
}
