package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is one record Tail read.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Time      time.Time
	Key       []byte
	Value     []byte
}

// Tail reads topic on the broker at addr (the host listener), starting
// back records before the end of each partition (0: at the end), and calls
// each for every record, in order within a partition, until ctx ends. It
// joins no consumer group and commits nothing: it changes nothing on the
// broker. It returns nil when ctx ends, and an error when the broker
// cannot be reached or the topic cannot be read.
func Tail(ctx context.Context, addr, topic string, back int64, each func(Record)) error {
	if addr == "" {
		return errors.New("reading a topic: no broker address")
	}
	start := kgo.NewOffset().AtEnd()
	if back > 0 {
		start = start.Relative(-back)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start),
		kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("reading topic %s partition %d on %s: %w", t, p, addr, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			each(Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, Key: r.Key, Value: r.Value})
		})
	}
}
