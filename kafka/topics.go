package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopics makes sure every topic exists on the broker at addr: a missing
// one is created (replication factor 1) with its partitions and configs; an
// existing one with fewer partitions than wanted gets more; configs of an
// existing topic are set. Asking for fewer partitions than a topic has is an
// error (Kafka cannot remove partitions). Running it twice changes nothing.
func EnsureTopics(ctx context.Context, addr string, topics []Topic) error {
	if len(topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	names := make([]string, 0, len(topics))
	for _, t := range topics {
		names = append(names, t.Name)
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("listing topics on %s: %w", addr, err)
	}
	for _, t := range topics {
		d, ok := existing[t.Name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			parts := t.Partitions
			if parts == 0 {
				parts = -1 // the broker's default
			}
			res, err := adm.CreateTopic(ctx, parts, 1, configPtrs(t.Config), t.Name)
			if err == nil {
				err = res.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("creating topic %q: %w", t.Name, err)
			}
			continue
		}
		if d.Err != nil {
			return fmt.Errorf("reading topic %q: %w", t.Name, d.Err)
		}
		have := int32(len(d.Partitions))
		switch {
		case t.Partitions == 0 || t.Partitions == have:
		case t.Partitions < have:
			return fmt.Errorf("topic %q has %d partitions and %d are asked for: Kafka cannot remove partitions; ask for %d or more, or delete the topic (for example with `devenv down --volumes`)", t.Name, have, t.Partitions, have)
		default:
			rs, err := adm.UpdatePartitions(ctx, int(t.Partitions), t.Name)
			if err == nil {
				var r kadm.CreatePartitionsResponse
				if r, err = rs.On(t.Name, nil); err == nil {
					err = r.Err
				}
			}
			if err != nil {
				return fmt.Errorf("raising topic %q from %d to %d partitions: %w", t.Name, have, t.Partitions, err)
			}
		}
		if len(t.Config) > 0 {
			var alter []kadm.AlterConfig
			for _, k := range slices.Sorted(maps.Keys(t.Config)) {
				v := t.Config[k]
				alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			}
			rs, err := adm.AlterTopicConfigs(ctx, alter, t.Name)
			if err == nil {
				for _, r := range rs {
					if r.Err != nil {
						err = r.Err
					}
				}
			}
			if err != nil {
				return fmt.Errorf("setting configs of topic %q: %w", t.Name, err)
			}
		}
	}
	return nil
}

func configPtrs(m map[string]string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out
}

// Topics returns the names of the topics on the broker at addr (the host
// listener), sorted, asking for at most a few seconds.
func Topics(ctx context.Context, addr string) ([]string, error) {
	if addr == "" {
		return nil, errors.New("listing topics: no broker address")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics on %s: %w", addr, err)
	}
	return td.Names(), nil
}
