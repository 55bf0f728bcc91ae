package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestAckKafka: with FLASHGATE_ACK=kafka a 202 means the reservation is in
// Kafka; with the broker gone the buy answers 503 naming its order, the
// reservation stays in the outbox and becomes that order once a broker is
// back, and a retry answers duplicate with it (contract §14).
func TestAckKafka(t *testing.T) {
	base := testenv.Config(t)
	broker, err := kafka.StartBroker(base.KafkaTopic, 2)
	if err != nil {
		t.Fatal(err)
	}
	addr := broker.Addrs()[0]
	s := start(t, func(c *config.Config) {
		*c = *base
		c.KafkaBrokers = []string{addr}
		c.KafkaPartitions = 2
		c.Ack = config.AckKafka
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 20, "shards": 2})

	a := s.buy(item, s.token(1))
	if a.Status != 202 {
		t.Fatalf("buy: %d %s", a.Status, a.Raw)
	}
	first := a.str("order_id")
	// The 202 came after the acknowledgement: a reader of the topic finds
	// the reservation without the relay's help.
	c := kafka.NewConsumer([]string{addr}, base.KafkaTopic, "durable-test-reader")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for found := false; !found; {
		msgs, err := c.FetchBatch(ctx, 100, 10*time.Millisecond)
		if err != nil {
			t.Fatalf("order %s not in kafka: %v", first, err)
		}
		for _, m := range msgs {
			found = found || string(m.Value[3:3+len(first)]) == first
		}
	}
	c.Close()

	broker.Close()
	began := time.Now()
	a = s.buy(item, s.token(2))
	if a.Status != 503 || a.code() != "unavailable" || a.str("order_id") == "" {
		t.Fatalf("buy without kafka: %d %s", a.Status, a.Raw)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("503 took %v", took)
	}
	kept := a.str("order_id")
	if a := s.buy(item, s.token(2)); a.Status != 409 || a.code() != "duplicate" || a.str("order_id") != kept {
		t.Fatalf("retry while kafka is down: %d %s (want duplicate %s)", a.Status, a.Raw, kept)
	}

	again, err := kafka.StartBrokerAt(addr, base.KafkaTopic, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	testenv.Eventually(t, 60*time.Second, func() error {
		got := rows(t, s, item)
		if got[first] != 1 || got[kept] != 2 {
			return fmt.Errorf("rows %v, want %s of user 1 and %s of user 2", got, first, kept)
		}
		return nil
	})
	if a := s.buy(item, s.token(2)); a.Status != 409 || a.code() != "duplicate" || a.str("order_id") != kept {
		t.Fatalf("retry after the relay: %d %s (want duplicate %s)", a.Status, a.Raw, kept)
	}
	if st := s.settle(item); st.Unpaid != 2 || st.Remaining != 18 {
		t.Fatalf("stats: %+v", st)
	}
}
