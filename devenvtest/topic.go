package devenvtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicTimeout bounds creating and deleting a test's topic.
const topicTimeout = 30 * time.Second

// Topic creates a topic of tb's own on the project's broker, name followed
// by a random suffix ("transfers-3f9a2c1e"), with one partition, and
// deletes it at tb's cleanup. It returns the topic's name. The test fails
// when the project has no Kafka or the broker refuses.
func (e *Env) Topic(tb testing.TB, name string) string {
	tb.Helper()
	addr, err := e.kafkaAddr()
	if err != nil {
		tb.Fatalf("devenvtest: %v", err)
	}
	topic := uniqueTopic(name)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		tb.Fatalf("devenvtest: kafka client for %s: %v", addr, err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(tb.Context(), topicTimeout)
	defer cancel()
	res, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		cl.Close()
		tb.Fatalf("devenvtest: creating topic %s on %s: %v", topic, addr, err)
	}
	tb.Cleanup(func() {
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), topicTimeout)
		defer cancel()
		if err := deleteTopic(ctx, adm, topic); err != nil {
			tb.Errorf("devenvtest: deleting topic %s on %s: %v", topic, addr, err)
		}
	})
	return topic
}

func deleteTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	res, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = res.Err
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil // gone already
	}
	return err
}

// uniqueTopic is name with a random suffix; Kafka topic names take
// letters, digits, '.', '_' and '-'.
func uniqueTopic(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return fmt.Sprintf("%s-%s", name, hex.EncodeToString(b))
}
