package redis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
)

// TestWithdrawTakesOnlyUntakenUnitsOnce: a withdrawal takes at most what
// is left, never a unit a buyer holds, and a replay of the same adjustment
// takes nothing more.
func TestWithdrawTakesOnlyUntakenUnitsOnce(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.Preload(ctx, 1, 0, 5); err != nil {
		t.Fatal(err)
	}
	reserve(t, s, 1, 0, 7, "o1")
	if k, err := s.Withdraw(ctx, 1, 0, "adj1", 10); err != nil || k != 4 {
		t.Fatalf("withdraw 10 of 4 left: %d %v", k, err)
	}
	if k, err := s.Withdraw(ctx, 1, 0, "adj1", 10); err != nil || k != 4 {
		t.Fatalf("replayed withdrawal: %d %v, want the first answer", k, err)
	}
	if got := reserve(t, s, 1, 0, 8, "o2"); got.Outcome != redis.ShardEmpty {
		t.Fatalf("buy after the withdrawal: %+v", got)
	}
	counts, err := s.Counts(ctx, 1, 1)
	if err != nil || counts[0].Stock != 0 || len(counts[0].Outbox) != 1 {
		t.Fatalf("counts: %+v %v", counts, err)
	}
}

// TestWithdrawRacesBuyersAndTransfers: withdrawals on every shard race
// buyers borrowing across shards; units held, units left and units
// withdrawn always add up to the stock loaded.
func TestWithdrawRacesBuyersAndTransfers(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const item, shards, stock = 2, 8, 400
	it := &flashgate.Item{ID: item, Shards: shards, Stock: stock, StartAt: time.Now().Add(-time.Second), EndAt: time.Now().Add(time.Hour), Price: 100}
	if err := s.LoadStock(ctx, []flashgate.Item{*it}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutItems(ctx, []flashgate.Item{*it}); err != nil {
		t.Fatal(err)
	}
	cached, err := s.Items().Get(ctx, item, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var sold, withdrawn atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := 0; u < 60; u++ {
				user := int64(g*1000 + u)
				r := flashgate.Reservation{OrderID: fmt.Sprintf("o%d", user), ItemID: item, UserID: user, Amount: 100, At: time.Now()}
				res, err := s.Buy(ctx, cached, &r, nil)
				if err != nil && err != redis.ErrBusy {
					t.Error(err)
					return
				}
				if err == nil && res.Outcome == redis.Reserved {
					sold.Add(1)
				}
			}
		}()
	}
	for a := 0; a < 20; a++ {
		id := fmt.Sprintf("adj%d", a)
		for sh := 0; sh < shards; sh++ {
			k, err := s.Withdraw(ctx, item, sh, id, 2)
			if err != nil {
				t.Fatal(err)
			}
			withdrawn.Add(k)
		}
	}
	wg.Wait()
	left, err := s.RemainingNow(ctx, item, shards)
	if err != nil {
		t.Fatal(err)
	}
	if got := sold.Load() + withdrawn.Load() + left; got != stock {
		t.Fatalf("sold %d + withdrawn %d + left %d = %d, want %d", sold.Load(), withdrawn.Load(), left, got, stock)
	}
	t.Logf("sold %d, withdrawn %d, left %d", sold.Load(), withdrawn.Load(), left)
}
