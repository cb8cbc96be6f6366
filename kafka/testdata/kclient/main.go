// Command kclient is a tiny Kafka client for the kafka package's integration
// test, run as a container on the broker's network (like a pod would).
//
//	kclient produce <broker> <topic> <value>...
//	kclient consume <broker> <topic> <count>
//
// consume prints one value per line.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 4 {
		return fmt.Errorf("usage: kclient produce|consume broker topic values...|count")
	}
	mode, broker, topic := args[0], args[1], args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch mode {
	case "produce":
		cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.AllowAutoTopicCreation())
		if err != nil {
			return err
		}
		defer cl.Close()
		for _, v := range args[3:] {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
				return fmt.Errorf("producing %q: %w", v, err)
			}
		}
		return nil
	case "consume":
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return err
		}
		defer cl.Close()
		for got := 0; got < n; {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return fmt.Errorf("consumed %d of %d records before the timeout", got, n)
			}
			for _, e := range fs.Errors() {
				return fmt.Errorf("fetch: %w", e.Err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				fmt.Println(string(r.Value))
				got++
			})
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}
