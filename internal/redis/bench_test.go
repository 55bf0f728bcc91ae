package redis_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
)

func benchItem(b *testing.B, s *redis.Store, stock int64, shards int) *redis.CachedItem {
	b.Helper()
	ctx := context.Background()
	for sh := 0; sh < shards; sh++ {
		s.Preload(ctx, 1, sh, stock/int64(shards))
	}
	it := &flashgate.Item{ID: 1, Shards: shards, Stock: stock, Price: 100,
		StartAt: time.Now().Add(-time.Hour), EndAt: time.Now().Add(time.Hour)}
	if err := s.PutItem(ctx, it); err != nil {
		b.Fatal(err)
	}
	c, err := s.Items().Get(ctx, 1, time.Now())
	if err != nil || c.Missing {
		b.Fatal(err)
	}
	return c
}

// BenchmarkItemStateLookup is the edge's state check: a cached item.
func BenchmarkItemStateLookup(b *testing.B) {
	s := openB(b)
	benchItem(b, s, 8, 8)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if it, err := s.Items().Get(ctx, 1, now); err != nil || it.Missing {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReserveScript is one buy's Redis round trip, concurrent callers
// auto-pipelined by rueidis.
func BenchmarkReserveScript(b *testing.B) {
	s := openB(b)
	it := benchItem(b, s, 1<<40, 8)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	buyParallel(b, s, it, nil)
}

// buyParallel buys on it in b.RunParallel, each buy a fresh user, until
// b.N buys are reserved; then, if bought is not nil, it is called with the
// reservation (its Shard set) in the buyer's goroutine.
func buyParallel(b *testing.B, s *redis.Store, it *redis.CachedItem, bought func(*flashgate.Reservation)) {
	ids := flashgate.NewOrderIDs()
	var user atomic.Int64
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		var wire []byte
		for pb.Next() {
			r := flashgate.Reservation{OrderID: ids.New(1), ItemID: 1, UserID: user.Add(1), Amount: 100, At: time.Now()}
			res, err := s.Buy(ctx, it, &r, wire)
			if err != nil || res.Outcome != redis.Reserved {
				b.Fatalf("%+v %v", res, err)
			}
			wire = res.Wire
			if bought != nil {
				bought(&r)
			}
		}
	})
}

// BenchmarkReserveRedisCPU is the reserve script's cost inside Redis: 128
// buyers at once on an item of 8 shards, each buy a fresh user, and Redis's
// own CPU time (INFO cpu, before and after) divided by the buys, reported
// as redis-µs/buy, with the script calls per buy (INFO commandstats).
// Everything else on the Redis counts too, so point it at a Redis of its
// own:
//
//	redis-server --port 6390 --save "" --appendonly no &
//	FLASHGATE_TEST_REDIS=127.0.0.1:6390 go test -run '^$' -bench ReserveRedisCPU ./internal/redis/
func BenchmarkReserveRedisCPU(b *testing.B) {
	s := openB(b)
	it := benchItem(b, s, 1<<40, 8)
	cpu0, calls0 := redisCPU(b, s)
	b.ReportAllocs()
	b.SetParallelism(128 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	buyParallel(b, s, it, nil)
	b.StopTimer()
	cpu1, calls1 := redisCPU(b, s)
	b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "redis-µs/buy")
	b.ReportMetric(float64(calls1-calls0)/float64(b.N), "calls/buy")
}

// redisCPU reads Redis's CPU seconds (user and system) and its count of
// EVALSHA calls.
func redisCPU(b *testing.B, s *redis.Store) (float64, int64) {
	b.Helper()
	c := s.Client()
	info, err := c.Do(context.Background(), c.B().Info().Section("cpu").Section("commandstats").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	var cpu float64
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "used_cpu_user:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		} else if v, ok := strings.CutPrefix(line, "used_cpu_sys:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		}
	}
	return cpu, commandCalls(info, "evalsha")
}

// BenchmarkBuySettleRedisCPU is the Redis CPU of an order's whole buy path:
// BenchmarkReserveRedisCPU's buys, the worker's settle of each reserve call's
// entry once its orders are rows, batched per shard as the worker's settles
// are (entries of 100 orders or more a call here; the worker's carry about
// 116 orders under load), and the worker's relay
// passes over every shard, one a second as the worker's (FLASHGATE_RELAY_AFTER
// 5s), then one at the end with everything due, so that what a relay spends
// per order on any order later is counted too. Reported per order as
// redis-µs/order. Point it at a Redis of its own, as for
// BenchmarkReserveRedisCPU.
func BenchmarkBuySettleRedisCPU(b *testing.B) {
	s := openB(b)
	const shards, settleBatch = 8, 100
	it := benchItem(b, s, 1<<40, shards)
	var mu [shards]sync.Mutex
	var written [shards][]string
	ctx := context.Background()
	settle := func(shard int, ids []string) {
		if _, err := s.Settle(ctx, 1, shard, ids); err != nil {
			b.Fatal(err)
		}
	}
	cpu0, calls0 := redisCPU(b, s)
	b.ReportAllocs()
	b.SetParallelism(128 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	stop := make(chan struct{})
	var relays sync.WaitGroup
	relays.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				relayPass(b, s, shards, now, 5*time.Second)
			}
		}
	})
	// Each reserve call's entry is announced as the gateway announces it
	// to Kafka; the worker then settles it by its field.
	var orders [shards]int
	s.Announce(func(_ context.Context, _, value []byte) error {
		rs, err := flashgate.ParseEntry(value)
		if err != nil {
			b.Error(err)
			return err
		}
		sh := rs[0].Shard
		mu[sh].Lock()
		written[sh] = append(written[sh], flashgate.EntryField(rs))
		orders[sh] += len(rs)
		var batch []string
		if orders[sh] >= settleBatch {
			batch, written[sh], orders[sh] = written[sh], nil, 0
		}
		mu[sh].Unlock()
		if batch != nil {
			settle(sh, batch)
		}
		return nil
	})
	buyParallel(b, s, it, nil)
	for sh := range written {
		settle(sh, written[sh])
	}
	close(stop)
	relays.Wait()
	relayPass(b, s, shards, time.Now(), 0)
	b.StopTimer()
	cpu1, calls1 := redisCPU(b, s)
	b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "redis-µs/order")
	b.ReportMetric(float64(calls1-calls0)/float64(b.N), "calls/order")
}

// relayPass is one pass of the worker's relay over item 1's shards at now.
func relayPass(b *testing.B, s *redis.Store, shards int, now time.Time, after time.Duration) {
	for sh := 0; sh < shards; sh++ {
		for cursor := uint64(0); ; {
			_, next, err := s.Stale(context.Background(), 1, sh, cursor, now, after, 1000)
			if err != nil {
				b.Error(err)
				return
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
}
