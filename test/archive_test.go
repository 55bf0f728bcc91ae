package test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
	"github.com/flashgate/flashgate/worker"
)

// countingClient counts the round trips sent through a rueidis client (a
// pipeline of DoMulti is one).
type countingClient struct {
	rueidis.Client
	n atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c *countingClient) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *countingClient) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.DoCache(ctx, cmd, ttl)
}

func (c *countingClient) DoMultiCache(ctx context.Context, cmds ...rueidis.CacheableTTL) []rueidis.RedisResult {
	c.n.Add(1)
	return c.Client.DoMultiCache(ctx, cmds...)
}

// itemKeys returns the keys of items under the prefix.
func itemKeys(t *testing.T, s *stack) []string {
	t.Helper()
	c := s.app.Store.Client()
	p := s.app.Config.RedisPrefix
	var out []string
	var cursor uint64
	for {
		e, err := c.Do(context.Background(), c.B().Scan().Cursor(cursor).Match(p+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range e.Elements {
			if rest := strings.TrimPrefix(k, p+":"); strings.HasPrefix(rest, "{i") || strings.HasPrefix(rest, "item") {
				out = append(out, k)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return out
		}
	}
}

// endedSales publishes n small sales, sells one unit of each, closes them
// and returns their items.
func endedSales(s *stack, n int) []int64 {
	s.t.Helper()
	var items []int64
	for i := 0; i < n; i++ {
		act, item := s.activity(fmt.Sprintf("small %d", i), -time.Second, time.Hour, map[string]any{"stock": 3, "shards": 4})
		s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil)
		if a := s.buy(item, s.token(int64(1000+i))); a.Status != 202 {
			s.t.Fatalf("buy: %s", a.Raw)
		}
		s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/close", act), nil)
		items = append(items, item)
	}
	return items
}

// TestArchiveFreesRedis: ended, settled sales lose every Redis key once
// FLASHGATE_ARCHIVE_AFTER has passed, their stats keep answering, and the
// worker's Redis round trips per tick do not grow with the archived sales.
func TestArchiveFreesRedis(t *testing.T) {
	s := start(t, func(c *config.Config) { c.ArchiveAfter = 300 * time.Millisecond })
	ctx := context.Background()
	_, live := s.activity("live", -time.Second, time.Hour, map[string]any{"stock": 5, "shards": 4})
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", s.itemActivity(live)), nil)

	// A worker of its own, measured: it only runs its jobs when told.
	counter := &countingClient{}
	store, err := redis.Open(ctx, redis.Options{Addrs: s.app.Config.RedisAddrs, Prefix: s.app.Config.RedisPrefix,
		Wrap: func(c rueidis.Client) rueidis.Client { counter.Client = c; return counter }})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	producer := kafka.NewProducer(kafka.ProducerOptions{Brokers: s.app.Brokers, Topic: s.app.Config.KafkaTopic})
	defer producer.Close()
	w := worker.New(worker.Config{Brokers: s.app.Brokers, Topic: s.app.Config.KafkaTopic}, s.app.DB, store, producer, testenv.Logger(t), prometheus.NewRegistry())
	tick := func() int64 {
		t.Helper()
		for _, job := range []func(context.Context) error{w.Relay, w.Reconcile, w.Restock} {
			job(ctx) // warm the item cache
		}
		before := counter.n.Load()
		for _, job := range []func(context.Context) error{w.Relay, w.Reconcile, w.Restock} {
			if err := job(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return counter.n.Load() - before
	}

	archiveAll := func(items []int64) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			got, _ := s.listed("?status=archived")
			for _, it := range items {
				if got[s.itemActivity(it)] != "archived" {
					return fmt.Errorf("item %d's activity not archived yet: %v", it, got)
				}
			}
			return nil
		})
	}

	first := endedSales(s, 10)
	archiveAll(first)
	if keys := itemKeys(t, s); len(keys) == 0 || strings.Contains(strings.Join(keys, " "), fmt.Sprintf("{i%d:", first[0])) {
		t.Fatalf("keys after archiving 10 sales (only the live one's should be left): %v", keys)
	}
	base := tick()

	second := endedSales(s, 20)
	archiveAll(second)
	if after := tick(); after != base {
		t.Fatalf("round trips per tick: %d with 10 archived sales, %d with 30", base, after)
	}
	t.Logf("worker round trips per tick: %d with 10 and with 30 archived sales", base)

	// Only the live sale's keys remain: 4 shards' stock and the metadata.
	for _, k := range itemKeys(t, s) {
		if !strings.Contains(k, fmt.Sprintf("{i%d:", live)) && !strings.HasSuffix(k, fmt.Sprintf(":item:%d", live)) && !strings.HasSuffix(k, ":items") {
			t.Errorf("key left after archive: %s", k)
		}
	}
	// The stats of an archived item keep answering.
	st := s.stats(second[0])
	if st.Stock != 3 || st.Remaining != 0 || st.Reserved != 0 || st.Unpaid != 1 {
		t.Fatalf("stats of an archived item: %+v", st)
	}
	if r := s.reconcile(second[0]); r.Drift != 0 || r.LiveOrders != 1 {
		t.Fatalf("reconcile of an archived item: %+v", r)
	}
	// A live sale more is visible to the measure: it counts what it should.
	_, more := s.activity("live 2", -time.Second, time.Hour, map[string]any{"stock": 5, "shards": 4})
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", s.itemActivity(more)), nil)
	if grown := tick(); grown <= base {
		t.Fatalf("round trips per tick with a second live sale: %d, with one: %d", grown, base)
	}
}

// TestExpiredBansArePruned: the worker removes an expired ban from Redis
// without anyone listing the bans.
func TestExpiredBansArePruned(t *testing.T) {
	s := start(t, nil)
	s.mustAdmin(200, "POST", "/admin/v1/blacklist", map[string]any{"user_id": 77, "ttl": "1s"})
	c := s.app.Store.Client()
	key := s.app.Config.RedisPrefix + ":bans"
	testenv.Eventually(t, 15*time.Second, func() error {
		n, err := c.Do(context.Background(), c.B().Hlen().Key(key).Build()).AsInt64()
		if err != nil || n != 0 {
			return fmt.Errorf("ban hash has %d fields (%v)", n, err)
		}
		return nil
	})
}

func (s *stack) itemActivity(item int64) int64 {
	s.t.Helper()
	var act int64
	if err := s.app.DB.Get(&act, "SELECT activity_id FROM seckill_item WHERE id = ?", item); err != nil {
		s.t.Fatal(err)
	}
	return act
}
