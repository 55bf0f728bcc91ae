package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestWithdrawTakesOnlyUntakenUnitsOnce: a withdrawal takes at most what
// is left, never a unit a buyer holds, and a replay of the same adjustment
// takes nothing more.
func TestWithdrawTakesOnlyUntakenUnitsOnce(t *testing.T) {
	s := openLoaded(t, 5)
	ctx := context.Background()
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

// BenchmarkPublishLoad loads 200 items × 64 shards (a publish's Redis
// work) while a buyer keeps reserving units of another item, and reports
// the buyer's worst and 99th-percentile wait during the loads: the load
// goes in pipelines of small commands, so a buyer waits behind at most one
// chunk, never behind the whole publish.
func BenchmarkPublishLoad(b *testing.B) {
	s := openB(b)
	// The buyer is a gateway: a process, and so a connection, of its own.
	gw, err := redis.Open(context.Background(), redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: s.Prefix()})
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	ctx := context.Background()
	items := make([]flashgate.Item, 200)
	for i := range items {
		items[i] = flashgate.Item{ID: int64(1000 + i), Shards: 64, Stock: 10_000, Price: 100,
			StartAt: time.Now(), EndAt: time.Now().Add(time.Hour)}
	}
	if _, err := gw.Preload(ctx, 1, 0, 1<<40); err != nil {
		b.Fatal(err)
	}
	// The same buyer with nothing loading, for comparison on this machine.
	var idle []time.Duration
	for u, until := int64(0), time.Now().Add(time.Second); time.Now().Before(until); u++ {
		start := time.Now()
		r := flashgate.Reservation{OrderID: fmt.Sprintf("i%d", u), ItemID: 1, UserID: -u - 1, Amount: 100, At: start}
		if _, err := gw.Reserve(ctx, 1, 0, -u-1, r.OrderID, r.AppendWire(nil), start); err != nil {
			b.Fatal(err)
		}
		idle = append(idle, time.Since(start))
	}
	slices.Sort(idle)
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	go func() {
		var waits []time.Duration
		for u := int64(0); ; u++ {
			select {
			case <-stop:
				done <- waits
				return
			default:
			}
			start := time.Now()
			r := flashgate.Reservation{OrderID: fmt.Sprintf("b%d", u), ItemID: 1, UserID: u, Amount: 100, At: start}
			if _, err := gw.Reserve(ctx, 1, 0, u, r.OrderID, r.AppendWire(nil), start); err != nil {
				b.Error(err)
			}
			waits = append(waits, time.Since(start))
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.LoadStock(ctx, items); err != nil {
			b.Fatal(err)
		}
		if err := s.PutItems(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	waits := <-done
	slices.Sort(waits)
	if len(waits) > 0 {
		b.ReportMetric(float64(waits[len(waits)-1].Microseconds())/1000, "buy-max-ms")
		b.ReportMetric(float64(waits[len(waits)*99/100].Microseconds())/1000, "buy-p99-ms")
	}
	b.ReportMetric(float64(idle[len(idle)*99/100].Microseconds())/1000, "idle-p99-ms")
	if err := s.DropItems(ctx, items); err != nil {
		b.Fatal(err)
	}
}
