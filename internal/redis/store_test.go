package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

func open(t *testing.T) *redis.Store { return openB(t) }

// openLoaded opens a store whose item 1 has units loaded in shard 0.
func openLoaded(t *testing.T, units int64) *redis.Store {
	t.Helper()
	s := open(t)
	if _, err := s.Preload(context.Background(), 1, 0, units); err != nil {
		t.Fatal(err)
	}
	return s
}

// putSpread stores an item on sale now with units spread over its shards
// as publishing spreads them, and returns it from the store's cache.
func putSpread(t *testing.T, s *redis.Store, item int64, shards, units int) *redis.CachedItem {
	t.Helper()
	ctx := context.Background()
	for sh := 0; sh < shards; sh++ {
		share := int64(units / shards)
		if sh < units%shards {
			share++
		}
		if _, err := s.Preload(ctx, item, sh, share); err != nil {
			t.Fatal(err)
		}
	}
	it := &flashgate.Item{ID: item, Shards: shards, Stock: int64(units), Price: 100,
		StartAt: time.Now().Add(-time.Hour), EndAt: time.Now().Add(time.Hour)}
	if err := s.PutItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	cached, err := s.Items().Get(ctx, item, time.Now())
	if err != nil || cached.Missing {
		t.Fatalf("cached item: %+v %v", cached, err)
	}
	return cached
}

func openB(t testing.TB) *redis.Store {
	t.Helper()
	s, err := redis.Open(context.Background(), redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: testenv.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func reserve(t *testing.T, s *redis.Store, item int64, shard int, user int64, order string) redis.ReserveResult {
	t.Helper()
	r := flashgate.Reservation{OrderID: order, ItemID: item, UserID: user, Amount: 990, Shard: shard, At: time.Now()}
	res, err := s.Reserve(context.Background(), item, shard, user, order, r.AppendWire(nil), r.At)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestReserveReplies(t *testing.T) {
	s := open(t)
	ctx := context.Background()

	if got := reserve(t, s, 1, 0, 7, "o1"); got.Outcome != redis.ShardNotLoaded {
		t.Fatalf("unloaded shard: got %+v", got)
	}
	if loaded, err := s.Preload(ctx, 1, 0, 2); err != nil || !loaded {
		t.Fatalf("preload: %v %v", loaded, err)
	}
	if loaded, err := s.Preload(ctx, 1, 0, 100); err != nil || loaded {
		t.Fatalf("second preload must leave the shard alone: %v %v", loaded, err)
	}
	if got := reserve(t, s, 1, 0, 7, "o1"); got.Outcome != redis.Reserved || got.Left != 1 {
		t.Fatalf("first buy: %+v", got)
	}
	if got := reserve(t, s, 1, 0, 7, "o2"); got.Outcome != redis.DuplicateBuyer || got.OrderID != "o1" {
		t.Fatalf("duplicate: %+v", got)
	}
	// The same script again (a retry) reserves once and answers the same.
	if got := reserve(t, s, 1, 0, 7, "o1"); got.Outcome != redis.Reserved || got.Left != 1 {
		t.Fatalf("the first buy retried: %+v", got)
	}
	if got := reserve(t, s, 1, 0, 8, "o3"); got.Outcome != redis.Reserved || got.Left != 0 {
		t.Fatalf("last unit: %+v", got)
	}
	if got := reserve(t, s, 1, 0, 9, "o4"); got.Outcome != redis.ShardEmpty {
		t.Fatalf("empty: %+v", got)
	}
	// The duplicate check comes before the stock check.
	if got := reserve(t, s, 1, 0, 8, "o5"); got.Outcome != redis.DuplicateBuyer || got.OrderID != "o3" {
		t.Fatalf("duplicate on empty shard: %+v", got)
	}
	ids, err := s.OutboxIDs(ctx, 1, 0)
	if err != nil || len(ids) != 2 {
		t.Fatalf("outbox: %v %v", ids, err)
	}
	// Stale entries come back once, then wait another period.
	stale, _, err := s.Stale(ctx, 1, 0, 0, time.Now(), time.Second, 10)
	if err != nil || len(stale) != 2 {
		t.Fatalf("stale: %d %v", len(stale), err)
	}
	r, err := flashgate.ParseReservation(stale[0])
	if err != nil || r.ItemID != 1 || r.Amount != 990 {
		t.Fatalf("stale entry %q: %v", stale[0], err)
	}
	if again, _, _ := s.Stale(ctx, 1, 0, 0, time.Now().Add(time.Second/2), time.Second, 10); len(again) != 0 {
		t.Fatalf("stale entries must wait a period after being returned: %d", len(again))
	}
	if n, err := s.Settle(ctx, 1, 0, []string{"o1", "o3", "nope"}); err != nil || n != 2 {
		t.Fatalf("settle: %d %v", n, err)
	}
	if ids, _ := s.OutboxIDs(ctx, 1, 0); len(ids) != 0 {
		t.Fatalf("outbox after settle: %v", ids)
	}
}

func TestRelease(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	s.Preload(ctx, 2, 0, 1)
	reserve(t, s, 2, 0, 7, "o1")
	if ok, err := s.Release(ctx, 2, 0, 7, "other"); err != nil || ok {
		t.Fatalf("release of an order that does not hold the mark: %v %v", ok, err)
	}
	if ok, err := s.Release(ctx, 2, 0, 7, "o1"); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	if ok, err := s.Release(ctx, 2, 0, 7, "o1"); err != nil || ok {
		t.Fatalf("second release must do nothing: %v %v", ok, err)
	}
	if left, _ := s.RemainingNow(ctx, 2, 1); left != 1 {
		t.Fatalf("remaining after release: %d", left)
	}
	// The user may buy again.
	if got := reserve(t, s, 2, 0, 7, "o2"); got.Outcome != redis.Reserved {
		t.Fatalf("buy after release: %+v", got)
	}
}

func TestTransfer(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	now := time.Now()
	s.Preload(ctx, 3, 0, 0)
	s.Preload(ctx, 3, 1, 5)

	if taken, left, err := s.Take(ctx, 3, 0, 1, "x0", 0, now); err != nil || taken != 0 || left != 0 {
		t.Fatalf("take from empty: %d %d %v", taken, left, err)
	}
	taken, left, err := s.Take(ctx, 3, 1, 0, "x1", 0, now)
	if err != nil || taken != 3 || left != 2 {
		t.Fatalf("take half rounded up: %d %d %v", taken, left, err)
	}
	// A replayed take takes nothing more.
	if again, left, err := s.Take(ctx, 3, 1, 0, "x1", 0, now); err != nil || again != 3 || left != 2 {
		t.Fatalf("replayed take: %d %d %v", again, left, err)
	}
	// In transfer, the units still count as remaining.
	if n, _ := s.RemainingNow(ctx, 3, 2); n != 5 {
		t.Fatalf("remaining during transfer: %d", n)
	}
	xs, err := s.Transfers(ctx, 3, 1)
	if err != nil || len(xs) != 1 || xs[0].ID != "x1" || xs[0].To != 0 || xs[0].Units != 3 {
		t.Fatalf("transfer log: %+v %v", xs, err)
	}
	if ok, err := s.Credit(ctx, 3, 0, "x1", 3, now); err != nil || !ok {
		t.Fatalf("credit: %v %v", ok, err)
	}
	if ok, err := s.Credit(ctx, 3, 0, "x1", 3, now); err != nil || ok {
		t.Fatalf("replayed credit must do nothing: %v %v", ok, err)
	}
	if err := s.Ack(ctx, 3, 1, "x1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RemainingNow(ctx, 3, 2); n != 5 {
		t.Fatalf("remaining after transfer: %d", n)
	}
	if taken, left, _ := s.Take(ctx, 3, 1, 0, "x2", 10, now); taken != 2 || left != 0 {
		t.Fatalf("take more than left: %d %d", taken, left)
	}
}

// TestBuyBorrows checks that a dry home shard borrows from the others and
// that with as many distinct buyers as units every unit sells.
func TestBuyBorrows(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const item, shards, units = 4, 16, 100
	cached := putSpread(t, s, item, shards, units)
	ids := flashgate.NewOrderIDs()
	sold := 0
	for user := int64(1); user <= units; user++ {
		r := flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: user, Amount: 100, At: time.Now()}
		res, err := s.Buy(ctx, cached, &r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != redis.Reserved {
			t.Fatalf("user %d of %d: %v", user, units, res.Outcome)
		}
		sold++
	}
	r := flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: units + 1, Amount: 100, At: time.Now()}
	if res, err := s.Buy(ctx, cached, &r, nil); err != nil || res.Outcome != redis.ShardEmpty {
		t.Fatalf("buyer past the stock: %+v %v", res, err)
	}
	if so, _ := s.SoldOut(ctx, item); !so {
		t.Fatal("sold-out flag not raised")
	}
	if n, _ := s.RemainingNow(ctx, item, shards); n != 0 || sold != units {
		t.Fatalf("remaining %d, sold %d", n, sold)
	}
	// The flag reaches the cache through invalidation.
	testenv.Eventually(t, 2*time.Second, func() error {
		c, err := s.Items().Get(ctx, item, time.Now())
		if err != nil || !c.SoldOut {
			return fmt.Errorf("cache still says not sold out (%v)", err)
		}
		return nil
	})
}

func TestItemCacheInvalidation(t *testing.T) {
	s := open(t)
	other := open(t) // another process's connection, same prefix
	_ = other
	ctx := context.Background()
	c, err := s.Items().Get(ctx, 99, time.Now())
	if err != nil || !c.Missing {
		t.Fatalf("unknown item: %+v %v", c, err)
	}
	it := &flashgate.Item{ID: 99, Shards: 2, Stock: 4, Price: 1990, Name: "tea",
		StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(time.Hour)}
	if err := s.PutItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, func() error {
		c, err := s.Items().Get(ctx, 99, time.Now())
		if err != nil || c.Missing || c.Name != "tea" || c.Price != 1990 {
			return fmt.Errorf("item not seen: %+v %v", c, err)
		}
		return nil
	})
	// A cached entry answers without Redis: same pointer twice.
	a, _ := s.Items().Get(ctx, 99, time.Now())
	b, _ := s.Items().Get(ctx, 99, time.Now())
	if a != b {
		t.Fatal("second read of a cached item was not served from memory")
	}
}

// TestBuyBorrowsConcurrently: as many concurrent distinct buyers as units,
// under heavy contention for borrowed stock: every buyer gets a unit.
func TestBuyBorrowsConcurrently(t *testing.T) {
	for _, shards := range []int{8, 32} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			const item, units, workers = 5, 3000, 128
			cached := putSpread(t, s, item, shards, units)
			ids := flashgate.NewOrderIDs()
			users := make(chan int64, units)
			for u := int64(1); u <= units; u++ {
				users <- u * 13
			}
			close(users)
			var wg sync.WaitGroup
			errs := make(chan error, units)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for u := range users {
						r := flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: u, Amount: 100, At: time.Now()}
						res, err := s.Buy(ctx, cached, &r, nil)
						if err == nil && res.Outcome != redis.Reserved {
							err = fmt.Errorf("user %d: outcome %v", u, res.Outcome)
						}
						if err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n, _ := s.RemainingNow(ctx, item, shards); n != 0 {
				t.Fatalf("remaining %d", n)
			}
		})
	}
}

// TestPendingOrderFromMark: a pending order is read from its buyer's mark
// (outbox entries are named by all the order ids of their call): every
// field of the reservation as the gateway made it, for its owner only,
// while the mark names it, and never for an id of another item or one
// that is not ours.
func TestPendingOrderFromMark(t *testing.T) {
	s := openLoaded(t, 10)
	ctx := context.Background()
	it := &redis.CachedItem{Item: flashgate.Item{ID: 1, Shards: 1, Price: 990}}
	at := time.Now().Truncate(time.Millisecond)
	id := string(flashgate.NewOrderIDs().Append(nil, 1, at))
	want := flashgate.Reservation{OrderID: id, ItemID: 1, UserID: 7, Amount: 990, Shard: 0, At: at.UTC()}
	if _, err := s.Reserve(ctx, 1, 0, 7, id, want.AppendWire(nil), at); err != nil {
		t.Fatal(err)
	}
	if r, ok, err := s.PendingOrder(ctx, it, 7, id); err != nil || !ok || r != want {
		t.Fatalf("pending order: %+v %v %v, want %+v", r, ok, err, want)
	}
	other := string(flashgate.NewOrderIDs().Append(nil, 2, at))
	for _, c := range []struct {
		user int64
		id   string
	}{{8, id}, {7, other}, {7, "o1"}, {7, string(flashgate.NewOrderIDs().Append(nil, 1, at))}} {
		if r, ok, err := s.PendingOrder(ctx, it, c.user, c.id); err != nil || ok {
			t.Fatalf("user %d, order %s: %+v %v %v, want none", c.user, c.id, r, ok, err)
		}
	}
	if _, err := s.Unmark(ctx, 1, 0, 7, id); err != nil {
		t.Fatal(err)
	}
	if r, ok, err := s.PendingOrder(ctx, it, 7, id); err != nil || ok {
		t.Fatalf("after the mark is cleared: %+v %v %v", r, ok, err)
	}
}
