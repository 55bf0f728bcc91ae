package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/kafka"
)

func TestProduceConsumeGroup(t *testing.T) {
	b, err := kafka.StartBroker("t1", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, kafka.Security{}, b.Addrs()); err != nil {
		t.Fatal(err)
	}
	if err := kafka.EnsureTopic(ctx, kafka.Security{}, b.Addrs(), "t1", 4); err != nil {
		t.Fatal(err)
	}
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: b.Addrs(), Topic: "t1"})
	const n = 2000
	for i := 0; i < n; i++ {
		if !p.Enqueue(kafka.Message{Key: []byte(fmt.Sprint(i % 97)), Value: []byte(fmt.Sprint(i))}) {
			t.Fatal("enqueue refused")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got, failed, _ := p.Stats(); got != n || failed != 0 {
		t.Fatalf("produced %d failed %d", got, failed)
	}
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: b.Addrs(), Topic: "t1", Group: "g1"})
	defer c.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		msgs, err := c.FetchBatch(ctx, 500, 20*time.Millisecond)
		if err != nil {
			t.Fatalf("fetch after %d: %v", len(seen), err)
		}
		for _, m := range msgs {
			seen[string(m.Value)] = true
		}
		if err := c.Commit(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
}
