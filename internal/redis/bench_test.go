package redis_test

import (
	"context"
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
	ids := flashgate.NewOrderIDs()
	var user atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var wire []byte
		for pb.Next() {
			r := flashgate.Reservation{OrderID: ids.New(1), ItemID: 1, UserID: user.Add(1), Amount: 100, At: time.Now()}
			res, err := s.Buy(ctx, it, &r, wire)
			if err != nil || res.Outcome != redis.Reserved {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
}
