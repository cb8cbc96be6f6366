package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// publishTimeout bounds one publish, so a request never hangs on a missing broker.
const publishTimeout = 5 * time.Second

// kafkaPublisher produces records to one topic with franz-go. Creating it does
// not connect: the service starts even when Kafka is down.
type kafkaPublisher struct {
	cl      *kgo.Client
	brokers []string
	topic   string
}

func newKafkaPublisher(brokers []string, topic string) (*kafkaPublisher, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(),
		kgo.DialTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(2*time.Second),
		kgo.RetryTimeout(publishTimeout),
		kgo.ProduceRequestTimeout(publishTimeout),
		kgo.RecordDeliveryTimeout(publishTimeout),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client for BROKER %v: %w", brokers, err)
	}
	return &kafkaPublisher{cl: cl, brokers: brokers, topic: topic}, nil
}

// Publish writes one record and waits until Kafka has it.
func (p *kafkaPublisher) Publish(ctx context.Context, key, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := p.cl.ProduceSync(ctx, &kgo.Record{Key: key, Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("publishing to topic %s at %v: %w", p.topic, p.brokers, err)
	}
	return nil
}

// Close flushes nothing and closes the client's connections.
func (p *kafkaPublisher) Close() { p.cl.Close() }
