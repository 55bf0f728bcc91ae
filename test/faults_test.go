package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestRedisDown: while Redis is unreachable a buy answers 503 and takes
// nothing; once it is back, buys go through and the numbers add up.
func TestRedisDown(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.RedisAddr())
	s := start(t, func(c *config.Config) { c.RedisAddrs = []string{proxy.Addr()} })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "shards": 2})
	if a := s.buy(item, s.token(1)); a.Status != 202 {
		t.Fatalf("buy: %s", a.Raw)
	}
	proxy.Cut()
	for u := int64(2); u < 12; u++ {
		a := s.buy(item, s.token(u))
		if a.Status != 503 || a.code() != "unavailable" {
			t.Fatalf("buy while Redis is down: %d %s", a.Status, a.Raw)
		}
	}
	if a := s.do("GET", s.gw+"/readyz", "", nil); a.Status != 503 {
		t.Fatalf("readyz while Redis is down: %d", a.Status)
	}
	proxy.Restore()
	testenv.Eventually(t, 10*time.Second, func() error {
		if a := s.buy(item, s.token(2)); a.Status != 202 {
			return fmt.Errorf("buy after Redis is back: %d %s", a.Status, a.Raw)
		}
		return nil
	})
	st := s.settle(item)
	if st.Unpaid != 2 || st.Remaining != 8 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestMySQLDown: buys keep being accepted while MySQL is unreachable (they
// wait in Kafka and the outbox); once it is back every accepted unit is a row.
func TestMySQLDown(t *testing.T) {
	proxy := testenv.MySQLProxy(t)
	s := start(t, func(c *config.Config) {
		c.MySQLDSN = proxy.DSN(t, c.MySQLDSN)
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 50, "shards": 4})
	proxy.Cut()
	accepted := map[string]int64{}
	for u := int64(1); u <= 20; u++ {
		a := s.buy(item, s.token(u))
		if a.Status != 202 {
			t.Fatalf("buy while MySQL is down: %d %s", a.Status, a.Raw)
		}
		accepted[a.str("order_id")] = u
	}
	time.Sleep(500 * time.Millisecond) // let the worker fail a few writes
	proxy.Restore()
	st := s.settle(item)
	if st.Unpaid != 20 || st.Remaining != 30 {
		t.Fatalf("stats: %+v", st)
	}
	got := rows(t, s, item)
	for order, user := range accepted {
		if got[order] != user {
			t.Fatalf("accepted order %s of user %d: row has %d", order, user, got[order])
		}
	}
	var left int
	if err := s.app.DB.Get(&left, "SELECT stock_left FROM seckill_item WHERE id = ?", item); err != nil || left != 30 {
		t.Fatalf("stock_left %d (%v)", left, err)
	}
}

// TestPublishIgnoresLeftoverKeys: keys an item id already has in Redis
// before its activity is published (a database reset under a Redis that
// kept its data) are replaced, never sold from.
func TestPublishIgnoresLeftoverKeys(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	c := s.app.Store.Client()
	p := s.app.Config.RedisPrefix
	// Item ids of a fresh database start at 1.
	for _, cmd := range []rueidis.Completed{
		c.B().Set().Key(p + ":item:1").Value(`{"id":1,"name":"ghost","price_cents":1,"stock":999,"shards":1,"start_ms":0,"end_ms":9999999999999}`).Build(),
		c.B().Set().Key(p + ":{i1:0}:stock").Value("999").Build(),
		c.B().Hset().Key(p+":{i1:0}:buyers").FieldValue().FieldValue("7", "old-order").Build(),
	} {
		if err := c.Do(ctx, cmd).Error(); err != nil {
			t.Fatal(err)
		}
	}
	item := s.sale(-time.Second, time.Hour, map[string]any{"name": "real", "stock": 3, "shards": 2})
	if item != 1 {
		t.Fatalf("item id %d, want 1", item)
	}
	if st := s.stats(item); st.Remaining != 3 || st.Stock != 3 {
		t.Fatalf("stats after publish over leftovers: %+v", st)
	}
	testenv.Eventually(t, 2*time.Second, func() error {
		a := s.do("GET", fmt.Sprintf("%s/api/v1/items/%d", s.gw, item), "", nil)
		if it, _ := a.Body["item"].(map[string]any); it == nil || it["name"] != "real" {
			return fmt.Errorf("item: %s", a.Raw)
		}
		return nil
	})
	if a := s.buy(item, s.token(7)); a.Status != 202 {
		t.Fatalf("user 7 held a leftover mark: %d %s", a.Status, a.Raw)
	}
}

// TestKafkaDown: while the broker is gone buys are still accepted (the
// reservation waits in the Redis outbox); when a broker is back at the same
// address the relay produces them and every accepted buy becomes a row.
func TestKafkaDown(t *testing.T) {
	s, broker := startOwnBroker(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 20, "shards": 2})
	broker.Close()
	accepted := map[string]int64{}
	for u := int64(1); u <= 10; u++ {
		a := s.buy(item, s.token(u))
		if a.Status != 202 {
			t.Fatalf("buy while Kafka is down: %d %s", a.Status, a.Raw)
		}
		accepted[a.str("order_id")] = u
	}
	time.Sleep(time.Second)
	broker.again(t)
	testenv.Eventually(t, 60*time.Second, func() error {
		got := rows(t, s, item)
		for order := range accepted {
			if _, ok := got[order]; !ok {
				return fmt.Errorf("%d of %d rows", len(got), len(accepted))
			}
		}
		return nil
	})
	if st := s.settle(item); st.Unpaid != 10 || st.Remaining != 10 {
		t.Fatalf("stats: %+v", st)
	}
}

// ownBroker is a Kafka-protocol broker of one test's own, which it may
// stop and start again at the same address (empty, as a broker that lost
// its log).
type ownBroker struct {
	*kafka.Broker
	addr, topic string
}

// startOwnBroker starts a stack on a broker of its own with two
// partitions; mutate, when set, changes the stack's settings further.
func startOwnBroker(t *testing.T, mutate func(*config.Config)) (*stack, *ownBroker) {
	t.Helper()
	base := testenv.Config(t)
	b, err := kafka.StartBroker(base.KafkaTopic, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	broker := &ownBroker{Broker: b, addr: b.Addrs()[0], topic: base.KafkaTopic}
	s := start(t, func(c *config.Config) {
		*c = *base
		c.KafkaBrokers = []string{broker.addr}
		c.KafkaPartitions = 2
		if mutate != nil {
			mutate(c)
		}
	})
	return s, broker
}

// again starts a broker at the stopped one's address.
func (b *ownBroker) again(t *testing.T) {
	t.Helper()
	again, err := kafka.StartBrokerAt(b.addr, b.topic, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
}
