package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate/internal/testenv"
	"github.com/flashgate/flashgate/worker"
)

func (s *stack) adjust(item, delta int64) answer {
	s.t.Helper()
	return s.adminDo("POST", fmt.Sprintf("/admin/v1/items/%d/stock", item), map[string]any{"delta": delta})
}

type reconciled struct{ Stock, Remaining, Reserved, LiveOrders, Drift int64 }

func (s *stack) reconcile(item int64) reconciled {
	s.t.Helper()
	a := s.mustAdmin(200, "GET", fmt.Sprintf("/admin/v1/items/%d/reconcile", item), nil)
	m := a.Body["reconcile"].(map[string]any)
	n := func(k string) int64 { return int64(m[k].(float64)) }
	return reconciled{n("stock"), n("remaining"), n("reserved"), n("live_orders"), n("drift")}
}

// TestStockAdjustRacesBuyers: while 600 shoppers storm an item of 8 shards
// (so that stock moves between shards), an operator adds and withdraws
// stock in both directions. Afterwards the invariants hold, checked from
// seckill_order: no more live orders than stock, one per user, every 202 a
// row, and MySQL's stock_left, Redis's remaining and the stock agree.
func TestStockAdjustRacesBuyers(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100, "shards": 8})
	users := make([]int64, 600)
	for i := range users {
		users[i] = int64(i + 1)
	}
	var out []outcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out = storm(s, item, users, 1, 24)
	}()
	deltas := []int64{20, -15, 7, -40, 13, -9, 30, -25, 5, -3, 50, -60, 1, -1, 18}
	var added, withdrawn int64
	for _, d := range deltas {
		a := s.adjust(item, d)
		if a.Status != 200 {
			t.Fatalf("adjust %+d: %d %s", d, a.Status, a.Raw)
		}
		if d > 0 {
			added += d
		} else {
			withdrawn -= d
		}
		time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
	}
	wg.Wait()

	st := s.settle(item)
	accepted := map[string]int64{}
	for _, o := range out {
		switch o.code {
		case "ok":
			accepted[o.order] = o.user
		case "sold_out":
		default:
			t.Fatalf("buy answered %d %s", o.status, o.code)
		}
	}
	got := rows(t, s, item)
	for order, user := range accepted {
		if got[order] != user {
			t.Fatalf("accepted order %s of user %d has no row", order, user)
		}
	}
	var live, dupUsers, stockLeft int64
	db := s.app.DB
	if err := db.Get(&live, "SELECT COUNT(*) FROM seckill_order WHERE item_id = ? AND status IN ('unpaid','paid')", item); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&dupUsers, "SELECT COUNT(*) FROM (SELECT user_id FROM seckill_order WHERE item_id = ? AND status IN ('unpaid','paid') GROUP BY user_id HAVING COUNT(*) > 1) d", item); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&stockLeft, "SELECT stock_left FROM seckill_item WHERE id = ?", item); err != nil {
		t.Fatal(err)
	}
	if live > st.Stock || dupUsers != 0 || int64(len(accepted)) != live {
		t.Fatalf("oversold or duplicated: live %d, stock %d, users with two %d, accepted %d", live, st.Stock, dupUsers, len(accepted))
	}
	if stockLeft != st.Stock-live || st.Remaining != stockLeft {
		t.Fatalf("stores disagree: stock %d, live %d, stock_left %d, Redis remaining %d", st.Stock, live, stockLeft, st.Remaining)
	}
	if st.Stock > 100+added || st.Stock < 100+added-withdrawn {
		t.Fatalf("stock %d outside [%d, %d]", st.Stock, 100+added-withdrawn, 100+added)
	}
	if r := s.reconcile(item); r.Drift != 0 || r.Stock != st.Stock || r.LiveOrders != live || r.Remaining != st.Remaining {
		t.Fatalf("reconcile: %+v, stats %+v", r, st)
	}
	t.Logf("stock %d after +%d/-%d asked; %d sold, %d left", st.Stock, added, withdrawn, live, st.Remaining)

	// Withdrawing more than is left takes what is left and says so.
	a := s.adjust(item, -1_000_000)
	if a.Status != 200 || int64(a.Body["stock"].(float64)) != live || int64(a.Body["remaining"].(float64)) != 0 {
		t.Fatalf("withdraw everything: %s (live %d)", a.Raw, live)
	}
	if a := s.buy(item, s.token(5000)); a.code() != "sold_out" {
		t.Fatalf("buy after withdrawing everything: %s", a.Raw)
	}
	// Added units sell at once: the sold-out flag is cleared everywhere.
	if a := s.adjust(item, 3); a.Status != 200 || int64(a.Body["remaining"].(float64)) != 3 {
		t.Fatalf("add 3: %s", a.Raw)
	}
	testenv.Eventually(t, time.Second, func() error {
		if a := s.buy(item, s.token(5001)); a.Status != 202 {
			return fmt.Errorf("buy after adding units: %s", a.Raw)
		}
		return nil
	})
	s.settle(item)
}

// TestStockAdjustAnswers: bad deltas and states answer clearly and change
// nothing.
func TestStockAdjustAnswers(t *testing.T) {
	s := start(t, nil)
	act, draftItem := s.activity("draft", time.Hour, 2*time.Hour, map[string]any{"stock": 10, "shards": 2})
	path := fmt.Sprintf("/admin/v1/items/%d/stock", draftItem)
	for _, c := range []struct {
		body   any
		status int
		says   string
	}{
		{map[string]any{"delta": 0}, 422, "delta"},
		{map[string]any{}, 422, "delta"},
		{map[string]any{"delta": -11}, 422, "below 0"},
		{map[string]any{"delta": 1.5}, 400, "delta"},
		{map[string]any{"delta": "5"}, 400, "delta"},
		{map[string]any{"delta": 5, "why": "x"}, 400, "why"},
		{map[string]any{"delta": 99999999999}, 422, "delta"},
		{"[", 400, "body"},
	} {
		a := s.adminDo("POST", path, c.body)
		if a.Status != c.status || !strings.Contains(a.str("message"), c.says) {
			t.Errorf("%v: %d %s, want %d naming %q", c.body, a.Status, a.Raw, c.status, c.says)
		}
	}
	if a := s.adminDo("POST", "/admin/v1/items/99999999999999999999/stock", map[string]any{"delta": 1}); a.Status != 400 {
		t.Errorf("overflowing id: %d %s", a.Status, a.Raw)
	}
	if a := s.adjust(draftItem, -10); a.Status != 200 || a.Body["stock"] != float64(0) {
		t.Fatalf("withdraw all before publish: %s", a.Raw)
	}
	if a := s.adjust(draftItem, 25); a.Status != 200 || a.Body["stock"] != float64(25) {
		t.Fatalf("add before publish: %s", a.Raw)
	}
	if r := s.reconcile(draftItem); r.Drift != 0 || r.Stock != 25 {
		t.Fatalf("reconcile before publish (nothing in Redis by design): %+v", r)
	}
	s.mustAdmin(200, "PATCH", fmt.Sprintf("/admin/v1/activities/%d", act), map[string]any{"start_at": time.Now().Add(-time.Second).Format(time.RFC3339Nano)})
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", act), nil)
	st := s.settle(draftItem)
	if st.Stock != 25 || st.Remaining != 25 {
		t.Fatalf("published after adjustments: %+v", st)
	}
	s.mustAdmin(200, "POST", fmt.Sprintf("/admin/v1/activities/%d/close", act), nil)
	if a := s.adjust(draftItem, 5); a.Status != 409 || !strings.Contains(a.str("message"), "ended") {
		t.Fatalf("adjust after the close: %d %s", a.Status, a.Raw)
	}
}

// TestDriftIsMeasured: units that vanish from Redis show as drift in the
// reconcile answer and in the worker's gauge, and its label set stays
// fixed.
func TestDriftIsMeasured(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "shards": 2})
	if a := s.buy(item, s.token(1)); a.Status != 202 {
		t.Fatal(a.Raw)
	}
	s.settle(item)
	if r := s.reconcile(item); r.Drift != 0 || r.LiveOrders != 1 || r.Remaining != 9 {
		t.Fatalf("reconcile of a settled item: %+v", r)
	}
	c := s.app.Store.Client()
	key := fmt.Sprintf("%s:{i%d:0}:stock", s.app.Config.RedisPrefix, item)
	if err := c.Do(context.Background(), c.B().Decrby().Key(key).Decrement(2).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if r := s.reconcile(item); r.Drift != 2 {
		t.Fatalf("reconcile after losing 2 units: %+v", r)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get(s.admin + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "\nflashgate_worker_stock_drift_units 2\n") || !strings.Contains(string(b), "\nflashgate_worker_stock_drift_items 1\n") {
			return fmt.Errorf("drift gauges not at 2 units, 1 item yet")
		}
		return nil
	})
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestPersistingDriftIsLoggedOnce: a drift that lasts is logged once, not
// at every measure, and once more when it clears.
func TestPersistingDriftIsLoggedOnce(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "shards": 2})
	logs := &lockedBuffer{}
	w := worker.New(worker.Config{Brokers: s.app.Brokers, Topic: s.app.Config.KafkaTopic, DriftEvery: time.Millisecond, DriftAfter: 50 * time.Millisecond},
		s.app.DB, s.app.Store, nil, slog.New(slog.NewTextHandler(logs, nil)), prometheus.NewRegistry())
	ctx := context.Background()
	c := s.app.Store.Client()
	key := fmt.Sprintf("%s:{i%d:1}:stock", s.app.Config.RedisPrefix, item)
	if err := c.Do(ctx, c.B().Decrby().Key(key).Decrement(1).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; time.Sleep(5 * time.Millisecond) {
		if err := w.Drift(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.count("stock drift persists"); n != 1 {
		t.Fatalf("a persisting drift logged %d times:\n%s", n, logs.b.String())
	}
	if err := c.Do(ctx, c.B().Incrby().Key(key).Increment(1).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		time.Sleep(2 * time.Millisecond)
		if err := w.Drift(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.count("stock drift cleared"); n != 1 {
		t.Fatalf("a cleared drift logged %d times:\n%s", n, logs.b.String())
	}
}

// TestInterruptedAdjustmentsFinish: a process that dies after logging an
// adjustment (an addition with MySQL raised and no unit in Redis yet; a
// withdrawal that took units from one shard only) leaves it pending, and
// the worker finishes each exactly once: the stores agree afterwards.
func TestInterruptedAdjustmentsFinish(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 40, "shards": 4})
	ctx := context.Background()
	db, store := s.app.DB, s.app.Store
	add, _, err := db.BeginAdjust(ctx, item, 8, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	withdraw, _, err := db.BeginAdjust(ctx, item, -15, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The withdrawing process got as far as the first shard.
	if k, err := store.Withdraw(ctx, item, 0, fmt.Sprintf("adj%d", withdraw.ID), 15); err != nil || k != 10 {
		t.Fatalf("first shard gave %d (%v)", k, err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		var pending int
		if err := db.Get(&pending, "SELECT COUNT(*) FROM stock_adjustment WHERE state = 'pending'"); err != nil || pending != 0 {
			return fmt.Errorf("%d adjustments pending (%v)", pending, err)
		}
		return nil
	})
	var applied []int64
	if err := db.Select(&applied, "SELECT applied FROM stock_adjustment WHERE id IN (?, ?) ORDER BY id", add.ID, withdraw.ID); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0] != 8 || applied[1] != -15 {
		t.Fatalf("applied %v, want [8 -15]", applied)
	}
	st := s.settle(item)
	if st.Stock != 40+8-15 || st.Remaining != 33 {
		t.Fatalf("after the fleet finished the adjustments: %+v", st)
	}
	if r := s.reconcile(item); r.Drift != 0 {
		t.Fatalf("reconcile: %+v", r)
	}
}
