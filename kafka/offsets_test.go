package kafka

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestEndOffsets(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got, err := EndOffsets(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("EndOffsets of an empty broker = %v, want none", got)
	}

	if err := EnsureTopics(ctx, addr, []Topic{{Name: "orders", Partitions: 3}, {Name: "audit"}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, p := range []int32{0, 2, 2} {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("x")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	got, err = EndOffsets(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]PartitionOffset{
		"orders": {{Partition: 0, Offset: 1}, {Partition: 1, Offset: 0}, {Partition: 2, Offset: 2}},
		"audit":  {{Partition: 0, Offset: 0}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EndOffsets = %+v\nwant %+v", got, want)
	}

	if _, err := EndOffsets(ctx, ""); err == nil {
		t.Error("EndOffsets with no address must fail")
	}
}
