package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionOffset is the end offset of one partition of a topic: the offset
// the next record written to it will get (0 for an empty partition).
type PartitionOffset struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`          // -1 when the broker gave none
	Err       string `json:"error,omitempty"` // why the broker gave none
}

// EndOffsets returns every topic on the broker at addr (the host listener),
// internal topics aside, with the end offsets of its partitions in partition
// order, asking for at most a few seconds. A partition the broker could not
// answer for carries its error and offset -1.
func EndOffsets(ctx context.Context, addr string) (map[string][]PartitionOffset, error) {
	if addr == "" {
		return nil, errors.New("listing end offsets: no broker address")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics on %s: %w", addr, err)
	}
	out := make(map[string][]PartitionOffset, len(td))
	for _, t := range td.Names() {
		out[t] = []PartitionOffset{}
	}
	if len(td) == 0 {
		return out, nil
	}
	listed, err := adm.ListEndOffsets(ctx, td.Names()...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets on %s: %w", addr, err)
	}
	for topic, ps := range listed {
		if _, ok := out[topic]; !ok {
			continue // a topic deleted meanwhile (partition -1)
		}
		for _, o := range ps {
			po := PartitionOffset{Partition: o.Partition, Offset: o.Offset}
			if o.Err != nil {
				po.Offset, po.Err = -1, o.Err.Error()
			}
			out[topic] = append(out[topic], po)
		}
		slices.SortFunc(out[topic], func(a, b PartitionOffset) int { return int(a.Partition - b.Partition) })
	}
	return out, nil
}
