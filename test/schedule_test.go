package test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
	"github.com/flashgate/flashgate/sale"
)

// doomedOps returns sale operations whose MySQL goes through a proxy that
// the test can cut, as a process that dies loses its connections.
func doomedOps(t *testing.T, s *stack) (*sale.Ops, *testenv.Proxy) {
	t.Helper()
	proxy := testenv.MySQLProxy(t)
	db, err := mysql.Open(context.Background(), proxy.DSN(t, s.app.Config.MySQLDSN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := redis.Open(context.Background(), redis.Options{Addrs: s.app.Config.RedisAddrs, Prefix: s.app.Config.RedisPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	return sale.New(db, store, testenv.Logger(t)), proxy
}

// TestScheduledPublishSurvivesADeath: a process takes a scheduled publish,
// loads the stock and dies before its commit; the fleet (an admin and a
// worker, separate app instances) still publishes the activity exactly once
// within a second of its time, from fresh stock.
func TestScheduledPublishSurvivesADeath(t *testing.T) {
	f := startFleet(t, nil)
	act, item := f.activity("scheduled", -time.Hour, time.Hour, map[string]any{"stock": 40, "shards": 8})
	at := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)
	a := f.mustAdmin(202, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), map[string]any{"at": at.Format(time.RFC3339Nano)})
	if a.str("publish_at") == "" {
		t.Fatalf("schedule answer: %s", a.Raw)
	}

	// The doomed process's clock runs ahead, so that it, not the fleet,
	// takes the activity first; it dies once the stock is loaded.
	doomed, proxy := doomedOps(t, f.stack)
	doomed.Now = func() time.Time { return time.Now().Add(time.Minute) }
	died := make(chan struct{})
	doomed.AfterLoad = func(context.Context, *flashgate.Activity) { proxy.Cut(); close(died) }
	if _, err := doomed.Publish(context.Background(), act); err == nil {
		t.Fatal("the doomed publish committed")
	}
	select {
	case <-died:
	default:
		t.Fatal("the doomed process never loaded the stock")
	}
	if a := f.buyAt(0, item, 1); a.code() != "not_found" {
		t.Fatalf("buy after the doomed publish: %s (nothing may sell before a commit)", a.Raw)
	}

	var seenAt time.Time
	for user := int64(2); ; user++ {
		a := f.buyAt(int(user%2), item, user)
		if a.code() == "ok" {
			seenAt = time.Now()
			break
		}
		if a.code() != "not_found" {
			t.Fatalf("buy while scheduled: %s", a.Raw)
		}
		if time.Since(at) > 3*time.Second {
			t.Fatal("not published 3s after its time")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var published, publishAt time.Time
	if err := f.app.DB.QueryRow("SELECT published_at, publish_at FROM seckill_activity WHERE id = ?", act).Scan(&published, &publishAt); err != nil {
		t.Fatal(err)
	}
	if late := published.Sub(publishAt); late < 0 || late > time.Second {
		t.Fatalf("published %v after its time", late)
	}
	t.Logf("published %v after its time; first buy answered %v after it", published.Sub(publishAt), seenAt.Sub(at))
	// Fresh stock, loaded once: everything adds up with one unit sold.
	st := f.settle(item)
	if st.Stock != 40 || st.Unpaid != 1 || st.Remaining != 39 {
		t.Fatalf("stats: %+v", st)
	}
	got, _ := f.listed("?status=live")
	if got[act] != "live" {
		t.Fatalf("status after the scheduled publish: %v", got)
	}
}

// TestScheduledPublishExactlyOnce: many processes polling at once publish
// each due activity exactly once.
func TestScheduledPublishExactlyOnce(t *testing.T) {
	s := start(t, nil)
	var acts []int64
	for i := 0; i < 8; i++ {
		act, _ := s.activity(fmt.Sprintf("due %d", i), -time.Hour, 3*time.Hour, map[string]any{"stock": 5, "shards": 4})
		s.mustAdmin(202, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), map[string]any{"at": time.Now().Add(time.Hour).Format(time.RFC3339)})
		acts = append(acts, act)
	}
	// The pollers' clocks say the hour has passed; the stack's own
	// schedulers, on the real clock, never see these due.
	var mu sync.Mutex
	count := map[int64]int{}
	var wg sync.WaitGroup
	for p := 0; p < 6; p++ {
		ops, _ := doomedOps(t, s)
		ops.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		ops.AfterLoad = func(ctx context.Context, a *flashgate.Activity) {
			mu.Lock()
			count[a.ID]++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // a publish takes a while: others poll meanwhile
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := ops.PublishDue(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, act := range acts {
		if count[act] != 1 {
			t.Errorf("activity %d loaded by %d processes", act, count[act])
		}
		var published sql.NullTime
		if err := s.app.DB.Get(&published, "SELECT published_at FROM seckill_activity WHERE id = ?", act); err != nil || !published.Valid {
			t.Errorf("activity %d not published (%v)", act, err)
		}
	}
}

// TestPublishRetryIsSafe: a publish that fails before its commit shows
// nothing, and one retried after its commit (the answer lost, or the
// metadata write lost) neither wipes what sold since nor leaves the
// activity invisible.
func TestPublishRetryIsSafe(t *testing.T) {
	s := start(t, nil)
	act, item := s.activity("retry", -time.Second, time.Hour, map[string]any{"stock": 20, "shards": 4})
	doomed, proxy := doomedOps(t, s)
	doomed.AfterLoad = func(context.Context, *flashgate.Activity) { proxy.Cut() }
	if _, err := doomed.Publish(context.Background(), act); err == nil {
		t.Fatal("publish through a cut connection committed")
	}
	if a := s.buy(item, s.token(1)); a.code() != "not_found" {
		t.Fatalf("buy after a failed publish: %s", a.Raw)
	}
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil)
	orders := map[int64]string{}
	for u := int64(1); u <= 5; u++ {
		a := s.buy(item, s.token(u))
		if a.Status != 202 {
			t.Fatalf("buy: %s", a.Raw)
		}
		orders[u] = a.str("order_id")
	}
	// The metadata is lost after the commit (the publisher died before
	// writing it, or its answer was lost): the item is not sold...
	c := s.app.Store.Client()
	if err := c.Do(context.Background(), c.B().Del().Key(fmt.Sprintf("%s:item:%d", s.app.Config.RedisPrefix, item)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Second, func() error {
		if a := s.buy(item, s.token(1)); a.code() != "not_found" {
			return fmt.Errorf("buy without metadata: %s", a.Raw)
		}
		return nil
	})
	// ...and the operator retries: conflict, and the item is back with
	// every buyer mark and outbox entry it had.
	if a := s.adminDo("POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil); a.Status != 409 {
		t.Fatalf("retried publish: %d %s", a.Status, a.Raw)
	}
	// The gateway learns of the metadata written back by Redis's
	// invalidation push, which may come a moment after the admin's answer:
	// until then it still answers not_found from its cache.
	testenv.Eventually(t, 5*time.Second, func() error {
		if a := s.buy(item, s.token(1)); a.code() == "not_found" {
			return fmt.Errorf("buy after the retried publish: %s", a.Raw)
		}
		return nil
	})
	for u, order := range orders {
		a := s.buy(item, s.token(u))
		if a.code() != "duplicate" || a.str("order_id") != order {
			t.Fatalf("user %d after the retry: %s, want duplicate %s", u, a.Raw, order)
		}
	}
	st := s.settle(item)
	if st.Unpaid != 5 || st.Remaining != 15 {
		t.Fatalf("stats: %+v", st)
	}
	// Without a retry, the fleet puts lost metadata back by itself.
	if err := c.Do(context.Background(), c.B().Del().Key(fmt.Sprintf("%s:item:%d", s.app.Config.RedisPrefix, item)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if a := s.buy(item, s.token(1)); a.code() != "duplicate" {
			return fmt.Errorf("buy while the metadata is lost: %s", a.Raw)
		}
		return nil
	})
}
