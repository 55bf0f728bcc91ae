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
	s, broker := startOwnBroker(t, func(c *config.Config) { c.Ack = config.AckKafka })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 20, "shards": 2})

	a := s.buy(item, s.token(1))
	if a.Status != 202 {
		t.Fatalf("buy: %d %s", a.Status, a.Raw)
	}
	first := a.str("order_id")
	// The 202 came after the acknowledgement: a reader of the topic finds
	// the reservation without the relay's help.
	c := kafka.NewConsumer(kafka.ConsumerOptions{Brokers: []string{broker.addr}, Topic: broker.topic, Group: "durable-test-reader"})
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

	broker.again(t)
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

// TestRewindRepair: Redis comes back with an older state of an item's shards
// (what an AOF that lost its last writes gives: the shard keys as they were,
// written by another Redis process). No buy of the item is answered from
// that state: they answer 503 until the worker has rebuilt the shards from
// MySQL and the outboxes; then the holders of lost buyer marks get
// duplicate, the units sold in the lost writes are not sold again, every
// 202 is a row of its user and none is cancelled (contract §14).
func TestRewindRepair(t *testing.T) {
	s := start(t, func(c *config.Config) { c.RepairGrace = 300 * time.Millisecond })
	const stock, shards = 30, 2
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": stock, "shards": shards})
	accepted := map[int64]string{} // user -> order of every 202
	buyOK := func(user int64) {
		t.Helper()
		a := s.buy(item, s.token(user))
		if a.Status != 202 {
			t.Fatalf("buy of user %d: %d %s", user, a.Status, a.Raw)
		}
		accepted[user] = a.str("order_id")
	}
	for u := int64(1); u <= 10; u++ {
		buyOK(u)
	}
	s.settle(item)

	ctx := context.Background()
	c := s.app.Store.Client()
	var keys []string
	for sh := 0; sh < shards; sh++ {
		for _, k := range []string{"stock", "buyers", "outbox", "relayed", "xout", "xin", "ep"} {
			keys = append(keys, fmt.Sprintf("%s:{i%d:%d}:%s", s.app.Config.RedisPrefix, item, sh, k))
		}
	}
	dumps := map[string]string{}
	for _, k := range keys {
		if d, err := c.Do(ctx, c.B().Dump().Key(k).Build()).ToString(); err == nil {
			dumps[k] = d
		}
	}
	for u := int64(11); u <= 20; u++ {
		buyOK(u)
	}
	s.settle(item)

	// The rewind: the shards as they were before users 11..20 bought, as
	// written by a Redis process that is not the running one.
	for _, k := range keys {
		cmd := c.B().Del().Key(k).Build()
		if d, ok := dumps[k]; ok {
			cmd = c.B().Restore().Key(k).Ttl(0).SerializedValue(d).Replace().Build()
		}
		if err := c.Do(ctx, cmd).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for sh := 0; sh < shards; sh++ {
		ep := fmt.Sprintf("%s:{i%d:%d}:ep", s.app.Config.RedisPrefix, item, sh)
		if err := c.Do(ctx, c.B().Hset().Key(ep).FieldValue().FieldValue("run", "0123456789abcdef0123456789abcdef01234567").FieldValue("ls", "1").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}

	// Users 11..20 retry and users 21..60 buy, each until answered other
	// than 503; the first answers come before any repair.
	if a := s.buy(item, s.token(21)); a.Status != 503 {
		t.Fatalf("buy from a rewound shard: %d %s", a.Status, a.Raw)
	}
	deadline := time.Now().Add(30 * time.Second)
	for u := int64(11); u <= 60; u++ {
		for {
			a := s.buy(item, s.token(u))
			if a.Status == 503 {
				if time.Now().After(deadline) {
					t.Fatalf("still 503 after 30s: %s", a.Raw)
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			switch {
			case u <= 20:
				if a.Status != 409 || a.str("order_id") != accepted[u] {
					t.Fatalf("user %d held %s before the rewind, now: %d %s", u, accepted[u], a.Status, a.Raw)
				}
			case a.Status == 202:
				accepted[u] = a.str("order_id")
			case a.Status != 410:
				t.Fatalf("buy of user %d after the repair: %d %s", u, a.Status, a.Raw)
			}
			break
		}
	}
	if len(accepted) != stock {
		t.Fatalf("%d accepted buys for %d units", len(accepted), stock)
	}
	st := s.settle(item)
	if st.Unpaid != stock || st.Remaining != 0 || st.Cancelled != 0 {
		t.Fatalf("stats: %+v", st)
	}
	var rs []struct {
		OrderID string `db:"order_id"`
		UserID  int64  `db:"user_id"`
		Status  string `db:"status"`
	}
	if err := s.app.DB.Select(&rs, "SELECT order_id, user_id, status FROM seckill_order WHERE item_id = ?", item); err != nil {
		t.Fatal(err)
	}
	byOrder := map[string]int64{}
	for _, r := range rs {
		if r.Status != "unpaid" {
			t.Fatalf("order %s of user %d is %s", r.OrderID, r.UserID, r.Status)
		}
		byOrder[r.OrderID] = r.UserID
	}
	for user, order := range accepted {
		if byOrder[order] != user {
			t.Fatalf("202 of user %d (%s) is not a row of that user", user, order)
		}
	}
	if len(rs) != stock {
		t.Fatalf("%d rows for %d units", len(rs), stock)
	}
}
