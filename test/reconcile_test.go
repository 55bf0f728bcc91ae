package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/testenv"
)

// TestReconcilerFinishesTransfers: a gateway that died between taking stock
// from a donor shard and crediting it leaves a logged transfer; the worker's
// reconciler credits it once, and the units count as remaining throughout.
func TestReconcilerFinishesTransfers(t *testing.T) { testReconcilerFinishesTransfers(t, start) }

func testReconcilerFinishesTransfers(t *testing.T, start starter) {
	s := start(t, nil)
	ctx := context.Background()
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 8, "shards": 2})
	store := s.app.Store
	taken, _, err := store.Take(ctx, item, 1, 0, "dead-gateway", 0, time.Now().Add(-time.Minute))
	if err != nil || taken != 2 {
		t.Fatalf("take: %d %v", taken, err)
	}
	if st := s.stats(item); st.Remaining != 8 {
		t.Fatalf("remaining during the transfer: %+v", st)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		xs, err := store.Transfers(ctx, item, 1)
		if err != nil || len(xs) != 0 {
			return fmt.Errorf("transfer still logged: %+v %v", xs, err)
		}
		return nil
	})
	// Credited exactly once: shard 0 had 4 and got 2.
	if n, err := store.Client().Do(ctx, store.Client().B().Get().Key(s.app.Config.RedisPrefix+fmt.Sprintf(":{i%d:0}:stock", item)).Build()).AsInt64(); err != nil || n != 6 {
		t.Fatalf("shard 0 holds %d (%v), want 6", n, err)
	}
	if ok, err := store.Credit(ctx, item, 0, "dead-gateway", 2, time.Now()); err != nil || ok {
		t.Fatalf("a late credit of the same transfer: %v %v", ok, err)
	}
	if st := s.stats(item); st.Remaining != 8 {
		t.Fatalf("remaining after the reconciler: %+v", st)
	}
}

// TestReconcilerClearsStaleSoldOut: a sold-out flag raised while units
// remain (a race the gateway cannot rule out across shards) is cleared.
func TestReconcilerClearsStaleSoldOut(t *testing.T) { testReconcilerClearsStaleSoldOut(t, start) }

func testReconcilerClearsStaleSoldOut(t *testing.T, start starter) {
	s := start(t, nil)
	ctx := context.Background()
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 3, "shards": 2})
	if err := s.app.Store.SetSoldOut(ctx, item, true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if a := s.buy(item, s.token(9)); a.Status != 202 {
			return fmt.Errorf("buy: %d %s", a.Status, a.Raw)
		}
		return nil
	})
}
