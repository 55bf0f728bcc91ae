package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/kafka"
)

// TestGroupLag checks the lag against what was produced and committed: all
// of it before the group commits anything, the rest after part is
// committed, none once everything is.
func TestGroupLag(t *testing.T) {
	b, err := kafka.StartBroker("lag", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopic(ctx, kafka.Security{}, b.Addrs(), "lag", 3); err != nil {
		t.Fatal(err)
	}
	p := kafka.NewProducer(kafka.ProducerOptions{Brokers: b.Addrs(), Topic: "lag"})
	const n = 300
	for i := 0; i < n; i++ {
		if !p.Enqueue(kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}) {
			t.Fatal("enqueue refused")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// One meter for every measurement, as a worker keeps it.
	m := kafka.NewLagMeter(kafka.Security{}, b.Addrs(), "lag", "g")
	defer m.Close()
	lag := func() int64 {
		t.Helper()
		l, err := m.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if got := lag(); got != n {
		t.Fatalf("lag before any commit = %d, want %d", got, n)
	}
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: b.Addrs(), Topic: "lag", Group: "g"})
	defer c.Close()
	msgs, err := c.FetchBatch(ctx, 100, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// A commit covers every offset up to the highest committed in its
	// partition, so the lag is what lies past those.
	if got := lag(); got >= n || got <= 0 {
		t.Fatalf("lag after committing %d of %d = %d", len(msgs), n, got)
	}
	for done := len(msgs); done < n; {
		msgs, err := c.FetchBatch(ctx, 500, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Commit(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		done += len(msgs)
	}
	if got := lag(); got != 0 {
		t.Fatalf("lag after committing everything = %d", got)
	}
	if _, err := kafka.GroupLag(ctx, kafka.Security{}, b.Addrs(), "no-such-topic", "g"); err == nil {
		t.Fatal("lag of a missing topic: no error")
	}
}
