package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// auditGroup is the consumer group of the audit log: it reads every record
// of the topic (the service's own transfers and anything else published
// there) and commits its offsets, so a restarted pod goes on where it stopped.
const auditGroup = "transfermoney-audit"

// auditRecord is one consumed record as GET /audit shows it.
type auditRecord struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

// audit keeps the last records consumed by the audit group.
type audit struct {
	mu      sync.Mutex
	records []auditRecord
}

const auditKeep = 100

func (a *audit) add(r auditRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	if len(a.records) > auditKeep {
		a.records = a.records[len(a.records)-auditKeep:]
	}
}

func (a *audit) snapshot() []auditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]auditRecord(nil), a.records...)
}

func (a *audit) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.snapshot())
}

// consume runs the audit consumer until ctx ends. Offsets are committed every
// second. A missing broker is retried by the client; the service keeps serving.
func (a *audit) consume(ctx context.Context, brokers []string, topic string, logger *log.Logger) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(auditGroup),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(time.Second),
		kgo.DialTimeout(2*time.Second),
	)
	if err != nil {
		logger.Printf("audit consumer: %v", err)
		return
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			logger.Printf("audit consumer: topic %s partition %d: %v", t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			a.add(auditRecord{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
		})
	}
}
