package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/devenvtest"
)

// eventWait bounds the wait for the transfer's event on the topic.
const eventWait = time.Minute

func TestIntegrationTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: brings up (or reuses) the cosmos environment")
	}
	env := devenvtest.Start(t, devenvtest.WithFile("../../devenv.yaml"))

	// are the account service's seeded accounts.
	url := env.ServiceURL("transfermoney") + "/transfers"
	var resp *http.Response
	var body []byte
	// On a cluster created a moment ago transfermoney may not reach account
	// yet (cluster DNS still settling): a 502/503 is tried again for a minute.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		var err error
		resp, err = http.Post(url, "application/json", strings.NewReader(`{"from":"A-1","to":"A-2","amount":1}`))
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("POST %s: reading the answer: %v", url, err)
		}
		if (resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			break
		}
		t.Logf("POST %s: %s %s; trying again", url, resp.Status, body)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %s, want 201 Created: %s", url, resp.Status, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		t.Fatalf("POST %s: answer %s has no id (%v)", url, body, err)
	}
	t.Logf("transfer %s created", created.ID)

	ctx, cancel := context.WithTimeout(t.Context(), eventWait)
	defer cancel()
	if err := findEvent(ctx, env.KafkaBootstrap(), "transfers", created.ID); err != nil {
		t.Fatal(err)
	}
}

// findEvent reads topic from its start until a record's JSON value has the
// id, or ctx ends.
func findEvent(ctx context.Context, bootstrap, topic, id string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", bootstrap, err)
	}
	defer cl.Close()
	seen := 0
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("no event for transfer %s on topic %s at %s within %s (%d records read)", id, topic, bootstrap, eventWait, seen)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return fmt.Errorf("reading topic %s at %s: %w", topic, bootstrap, errs[0].Err)
		}
		found := false
		fetches.EachRecord(func(r *kgo.Record) {
			seen++
			var ev struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(r.Value, &ev) == nil && ev.ID == id {
				found = true
			}
		})
		if found {
			return nil
		}
	}
}
