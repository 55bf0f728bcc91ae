package mysql_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/testenv"
)

// BenchmarkPeriodicQueries runs, against a live item with the
// sub-benchmark's number of order rows, each MySQL call the worker's
// periodic jobs make while a sale runs, and reports the server's CPU per
// call (mariadb-µs/op, on a mariadbd of the benchmark's own). A call whose
// cost grows with the rows scans the sale; the others cost the same at any
// size. How often each runs: the drift gauge (LiveItems, then ItemCounts
// per live item) every 5 s, and ItemCounts again for every admin stats
// request (flashgate bench polls it every 250 ms while draining); the expiry
// sweep, the restocker and the adjustment check every tick (1 s); the
// scheduler's PublishDue every 200 ms and OpenItems every 2 s, in every
// worker and admin process.
//
//	go test -run '^$' -bench PeriodicQueries -benchtime 200x ./internal/mysql
func BenchmarkPeriodicQueries(b *testing.B) {
	addr, pid := testenv.StartPlainMariaDB(b)
	ctx := context.Background()
	for _, rows := range []int{20_000, 200_000} {
		name := "bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		db, item := itemDB(b, "root@tcp("+addr+")/"+name+"?parseTime=true", int64(rows))
		if _, err := db.Exec("UPDATE seckill_activity SET published_at = NOW(3) - INTERVAL 1 MINUTE, start_at = NOW(3) - INTERVAL 1 MINUTE"); err != nil {
			b.Fatal(err)
		}
		v := &benchVariant{db: db, item: item, ids: flashgate.NewOrderIDs()}
		v.write(ctx, b, 1000, rows/1000)
		flushDirty(b, db) // the writes' pages, not charged to the first call
		now := time.Now()
		calls := []struct {
			name string
			fn   func() error
		}{
			{"drift/LiveItems", func() error { _, err := db.LiveItems(ctx, now); return err }},
			{"drift+stats/ItemCounts", func() error { _, err := db.ItemCounts(ctx, item, nil); return err }},
			{"expiry/SweepExpired", func() error {
				_, err := db.SweepExpired(ctx, now.Add(-15*time.Minute), mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}, 500, now)
				return err
			}},
			{"restock/Unrestocked", func() error { _, err := db.Unrestocked(ctx, 500); return err }},
			{"adjust/PendingAdjustments", func() error { _, err := db.PendingAdjustments(ctx, now.Add(-5*time.Second), 100); return err }},
			{"scheduler/PublishDue", func() error { _, err := db.PublishDue(ctx, now, nil); return err }},
			{"scheduler/OpenItems", func() error { _, err := db.OpenItems(ctx, now, now.Add(-5*time.Second)); return err }},
		}
		for _, c := range calls {
			b.Run("rows="+strconv.Itoa(rows)+"/"+c.name, func(b *testing.B) {
				before := serverCPU(b, pid)
				for range b.N {
					if err := c.fn(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((serverCPU(b, pid)-before).Microseconds())/float64(b.N), "mariadb-µs/op")
			})
		}
	}
}

// BenchmarkSweepWalk is the expiry sweep's price per order: since migration
// 007 the sweep reads every order row once, walking the primary key (see
// internal/mysql/sweep.go), where the index it replaced was written by every
// insert and every status change. The table holds the sub-benchmark's
// number of paid orders (the walk reads them and takes none); an op sets
// the mark back to the start and sweeps the whole table the way
// payment.Service.Expire does, in batches of 200. mariadb-µs/row is the
// server's CPU per row walked.
//
//	go test -run '^$' -bench SweepWalk -benchtime 5x ./internal/mysql
func BenchmarkSweepWalk(b *testing.B) {
	addr, pid := testenv.StartPlainMariaDB(b)
	ctx := context.Background()
	for _, rows := range []int{20_000, 200_000} {
		b.Run("rows="+strconv.Itoa(rows), func(b *testing.B) {
			name := "bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			db, item := itemDB(b, "root@tcp("+addr+")/"+name+"?parseTime=true", int64(rows))
			v := &benchVariant{db: db, item: item, ids: flashgate.NewOrderIDs()}
			v.write(ctx, b, 1000, rows/1000)
			if _, err := db.Exec("UPDATE seckill_order SET status = 'paid', paid_at = created_at"); err != nil {
				b.Fatal(err)
			}
			flushDirty(b, db)
			const limit = 200
			b.ResetTimer()
			var cpu time.Duration
			for range b.N {
				if _, err := db.Exec("UPDATE seckill_sweep_mark SET mark = ''"); err != nil {
					b.Fatal(err)
				}
				before := serverCPU(b, pid)
				now := time.Now()
				for {
					sw, err := db.SweepExpired(ctx, now.Add(time.Hour), mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}, limit, now)
					if err != nil {
						b.Fatal(err)
					}
					if len(sw.Cancelled)+len(sw.Open) > 0 {
						b.Fatalf("the walk took %d orders", len(sw.Cancelled)+len(sw.Open))
					}
					if sw.Seen < limit {
						break
					}
				}
				cpu += serverCPU(b, pid) - before
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*rows), "mariadb-µs/row")
		})
	}
}
