package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// accountError is a non-2xx answer of the account service.
type accountError struct {
	Status  int    // the account service's HTTP status
	Message string // its "error" field, or the body
}

func (e *accountError) Error() string {
	return fmt.Sprintf("account service answered %d: %s", e.Status, e.Message)
}

// accountClient calls the account service's withdraw and deposit endpoints.
type accountClient struct {
	base string
	http *http.Client
}

func newAccountClient(base string) *accountClient {
	return &accountClient{base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

// Withdraw takes amount from account id.
func (c *accountClient) Withdraw(ctx context.Context, id string, amount int64) error {
	return c.move(ctx, id, "withdraw", amount)
}

// Deposit adds amount to account id.
func (c *accountClient) Deposit(ctx context.Context, id string, amount int64) error {
	return c.move(ctx, id, "deposit", amount)
}

func (c *accountClient) move(ctx context.Context, id, op string, amount int64) error {
	body, err := json.Marshal(map[string]int64{"amount": amount})
	if err != nil {
		return fmt.Errorf("encoding %s request: %w", op, err)
	}
	u := c.base + "/accounts/" + url.PathEscape(id) + "/" + op
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building %s request: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling account service %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	msg := string(bytes.TrimSpace(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &accountError{Status: resp.StatusCode, Message: msg}
}
