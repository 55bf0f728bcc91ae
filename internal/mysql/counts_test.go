package mysql_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/testenv"
)

// rowCounts counts an item's rows of seckill_order by status, the way the
// counters replaced.
func rowCounts(t testing.TB, db *mysql.DB, item int64) mysql.OrderCounts {
	t.Helper()
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
	}
	if err := db.Select(&rows, "SELECT status, COUNT(*) AS n FROM seckill_order WHERE item_id = ? GROUP BY status", item); err != nil {
		t.Fatal(err)
	}
	var c mysql.OrderCounts
	for _, r := range rows {
		if !c.Set(flashgate.OrderStatus(r.Status), r.N) {
			t.Fatalf("status %q", r.Status)
		}
	}
	return c
}

// checkCounts compares what ItemOrderCounts and ItemCounts answer for item
// with its rows, and with want unless want is nil.
func checkCounts(t testing.TB, db *mysql.DB, item int64, step string, want *mysql.OrderCounts) {
	t.Helper()
	ctx := context.Background()
	rows := rowCounts(t, db, item)
	got, err := db.ItemOrderCounts(ctx, item)
	if err != nil {
		t.Fatal(err)
	}
	if got != rows {
		t.Errorf("%s: ItemOrderCounts %+v, rows %+v", step, got, rows)
	}
	c, err := db.ItemCounts(ctx, item, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OrderCounts != rows {
		t.Errorf("%s: ItemCounts %+v, rows %+v", step, c.OrderCounts, rows)
	}
	if want != nil && rows != *want {
		t.Errorf("%s: rows %+v, want %+v (the test's own bookkeeping)", step, rows, *want)
	}
}

// TestOrderCountsFollowEveryChange takes orders of an item through every
// path that inserts an order row or changes its status, and compares the
// counters with the rows after each.
func TestOrderCountsFollowEveryChange(t *testing.T) {
	db, item := itemDB(t, testenv.Database(t), 8)
	ctx := context.Background()
	ids := flashgate.NewOrderIDs()
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := func(item, user int64, at time.Time) flashgate.Reservation {
		return flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: user, Amount: 990, At: at}
	}
	// A second item of the same activity: its counts must not mix.
	other, err := db.AddItem(ctx, &flashgate.Item{ActivityID: activityOf(t, db, item), Name: "other", Price: 990, Points: 990, Stock: 10, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "empty", &mysql.OrderCounts{})

	// The worker: inserted unpaid, a second live order of user 1 stored
	// cancelled, a replay, and an item of the other id in the same batch.
	old := now.Add(-time.Hour) // expired for the sweep below
	a1, a2, a3, dup := r(item, 1, old), r(item, 2, now), r(item, 3, now), r(item, 1, now)
	o1 := r(other, 1, now)
	if _, err := db.WriteReservations(ctx, []flashgate.Reservation{a1, a2, a3, dup, o1}); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "first batch", &mysql.OrderCounts{Unpaid: 3, Cancelled: 1})
	checkCounts(t, db, other, "first batch, other item", &mysql.OrderCounts{Unpaid: 1})
	if _, err := db.WriteReservations(ctx, []flashgate.Reservation{a1, dup}); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "replay", &mysql.OrderCounts{Unpaid: 3, Cancelled: 1})
	// Only a conflict: no row inserted, so no stock update, one cancelled.
	if res, err := db.WriteReservations(ctx, []flashgate.Reservation{r(item, 2, now)}); err != nil || res.Conflicts != 1 {
		t.Fatalf("conflict only: %+v, %v", res, err)
	}
	checkCounts(t, db, item, "conflict only", &mysql.OrderCounts{Unpaid: 3, Cancelled: 2})

	// Payments: Alipay's notify, then points; a replayed notify changes
	// nothing.
	pay := mysql.ChannelReport{OrderID: a2.OrderID, Channel: mysql.ChannelAlipay, NotifyID: "n1", TradeNo: "T1",
		TradeStatus: mysql.PaySuccess, Amount: 990, Paid: true, Content: "{}", At: now}
	for range 2 {
		if _, _, err := db.ApplyPayment(ctx, pay); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, db, item, "paid by notify", &mysql.OrderCounts{Unpaid: 2, Paid: 1, Cancelled: 2})
	if _, err := db.GrantPoints(ctx, 3, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PayWithPoints(ctx, a3.OrderID, 3, 990, time.Time{}, now); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "paid with points", &mysql.OrderCounts{Unpaid: 1, Paid: 2, Cancelled: 2})

	// Refunds: through a channel, and of points.
	if done, _, err := db.MarkRefunded(ctx, a2.OrderID, mysql.ChannelAlipay, a2.OrderID+"-R", "T1", now); err != nil || !done {
		t.Fatalf("refund: %v, %v", done, err)
	}
	checkCounts(t, db, item, "refunded", &mysql.OrderCounts{Unpaid: 1, Paid: 1, Cancelled: 2, Refunded: 1})
	if _, err := db.RefundPoints(ctx, a3.OrderID, 3, a3.OrderID+"-R", now); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "refunded points", &mysql.OrderCounts{Unpaid: 1, Cancelled: 2, Refunded: 2})

	// The owner's cancel, then the expiry sweep: it cancels what has no
	// Alipay trade and leaves the rest to the caller.
	b1, b2, b3 := r(item, 4, now), r(item, 5, old), r(item, 6, old)
	if _, err := db.WriteReservations(ctx, []flashgate.Reservation{b1, b2, b3}); err != nil {
		t.Fatal(err)
	}
	if done, _, err := db.CancelUnpaid(ctx, b1.OrderID, now); err != nil || !done {
		t.Fatalf("cancel: %v, %v", done, err)
	}
	checkCounts(t, db, item, "cancelled", &mysql.OrderCounts{Unpaid: 3, Cancelled: 3, Refunded: 2})
	if _, err := db.OpenAlipay(ctx, b3.OrderID, 6, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sw, err := db.SweepExpired(ctx, now.Add(-time.Minute), mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}, 100, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Cancelled) != 2 || len(sw.Open) != 1 {
		t.Fatalf("sweep: %d cancelled, %d open; want 2 (a1, b2) and 1 (b3)", len(sw.Cancelled), len(sw.Open))
	}
	checkCounts(t, db, item, "swept", &mysql.OrderCounts{Unpaid: 1, Cancelled: 5, Refunded: 2})
	if done, _, err := db.CancelUnpaid(ctx, b3.OrderID, now); err != nil || !done {
		t.Fatalf("cancel after the sweep: %v, %v", done, err)
	}
	// A cancel of an order no longer unpaid changes nothing.
	if done, _, err := db.CancelUnpaid(ctx, b3.OrderID, now); err != nil || done {
		t.Fatalf("second cancel: %v, %v", done, err)
	}
	checkCounts(t, db, item, "cancelled after the sweep", &mysql.OrderCounts{Cancelled: 6, Refunded: 2})
	checkCounts(t, db, other, "other item at the end", &mysql.OrderCounts{Unpaid: 1})
}

func activityOf(t testing.TB, db *mysql.DB, item int64) int64 {
	t.Helper()
	var a int64
	if err := db.Get(&a, "SELECT activity_id FROM seckill_item WHERE id = ?", item); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOrderCountsRollBack: counts written in a transaction that then fails
// go with it. The stock guard's retry of WriteReservations (the first
// attempt inserts and is rolled back), and a payment whose last statement
// fails after its counts were added.
func TestOrderCountsRollBack(t *testing.T) {
	db, item := itemDB(t, testenv.Database(t), 3)
	ctx := context.Background()
	ids := flashgate.NewOrderIDs()
	now := time.Now().UTC().Truncate(time.Millisecond)
	other, err := db.AddItem(ctx, &flashgate.Item{ActivityID: activityOf(t, db, item), Name: "other", Price: 990, Points: 990, Stock: 10, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	var batch []flashgate.Reservation
	for u := range int64(5) {
		batch = append(batch,
			flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: u + 1, Amount: 990, At: now},
			flashgate.Reservation{OrderID: ids.New(other), ItemID: other, UserID: u + 1, Amount: 990, At: now})
	}
	// item has 3 units for 5 buyers: the first attempt writes both items
	// and fails the guard of one of them; the retry writes that one guarded.
	res, err := db.WriteReservations(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 8 || res.Guarded != 2 {
		t.Fatalf("%+v, want 8 inserted (3 + 5) and 2 guarded", res)
	}
	checkCounts(t, db, item, "guarded item", &mysql.OrderCounts{Unpaid: 3, Cancelled: 2})
	checkCounts(t, db, other, "the other item of the retried batch", &mysql.OrderCounts{Unpaid: 5})

	// A payment that fails after setStatus: the notify's row is refused
	// by a trigger of this test's database.
	if _, err := db.Exec(`CREATE TRIGGER refuse_notify BEFORE INSERT ON payment_notify FOR EACH ROW
		SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'`); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.ApplyPayment(ctx, mysql.ChannelReport{OrderID: batch[1].OrderID, Channel: mysql.ChannelAlipay, NotifyID: "n1",
		TradeNo: "T1", TradeStatus: mysql.PaySuccess, Amount: 990, Paid: true, Content: "{}", At: now})
	if err == nil {
		t.Fatal("payment recorded despite the trigger")
	}
	checkCounts(t, db, other, "failed payment", &mysql.OrderCounts{Unpaid: 5})
}

// TestOrderCountsConcurrent writes, pays, cancels and sweeps orders of one
// item at once, and reads its counts meanwhile: no deadlock or error, and
// the counters end equal to the rows.
func TestOrderCountsConcurrent(t *testing.T) {
	const writers, payers, batches, size = 2, 6, 20, 25
	db, item := itemDB(t, testenv.Database(t), writers*batches*size)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ids := flashgate.NewOrderIDs()
	var user atomic.Int64
	written := make(chan string, writers*batches*size)
	var fail sync.Once
	errc := make(chan error, 1)
	failed := func(err error) {
		fail.Do(func() { errc <- err; cancel() })
	}

	var wg sync.WaitGroup
	var writing sync.WaitGroup
	for range writers {
		writing.Add(1)
		wg.Go(func() {
			defer writing.Done()
			for b := range batches {
				now := time.Now().UTC().Truncate(time.Millisecond)
				rs := make([]flashgate.Reservation, size)
				for i := range rs {
					at := now
					if i%4 == 0 {
						at = now.Add(-time.Hour) // for the sweep
					}
					u := user.Add(1)
					if i == size-1 && b > 0 {
						u-- // a second live order of a user: stored cancelled
					}
					rs[i] = flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: u, Amount: 990, At: at}
				}
				if _, err := db.WriteReservations(ctx, rs); err != nil {
					failed(fmt.Errorf("write: %w", err))
					return
				}
				for _, r := range rs {
					written <- r.OrderID
				}
			}
		})
	}
	go func() { writing.Wait(); close(written) }()
	now := time.Now().UTC()
	for p := range payers {
		wg.Go(func() {
			for id := range written {
				var err error
				switch p % 3 {
				case 0, 1:
					_, _, err = db.ApplyPayment(ctx, mysql.ChannelReport{OrderID: id, Channel: mysql.ChannelAlipay, NotifyID: "n-" + id,
						TradeNo: "T-" + id, TradeStatus: mysql.PaySuccess, Amount: 990, Paid: true, Content: "{}", At: now})
				case 2:
					_, _, err = db.CancelUnpaid(ctx, id, now)
				}
				if err != nil {
					failed(fmt.Errorf("pay or cancel %s: %w", id, err))
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.SweepExpired(ctx, now.Add(-time.Minute), mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}, 50, now); err != nil {
				failed(fmt.Errorf("sweep: %w", err))
				return
			}
			if _, err := db.ItemCounts(ctx, item, nil); err != nil {
				failed(fmt.Errorf("read counts: %w", err))
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	side.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	rows := rowCounts(t, db, item)
	if rows.Paid == 0 || rows.Cancelled == 0 || rows.Unpaid+rows.Paid+rows.Cancelled != writers*batches*size {
		t.Errorf("rows %+v: want paid and cancelled orders, %d in all", rows, writers*batches*size)
	}
	checkCounts(t, db, item, "after the storm", nil)
}

// TestOrderCountsMigration applies migration 006 to a database as it was
// before it (no counter table, idx_order_item_status on seckill_order)
// that already has orders: the counters start equal to the rows, the
// index is gone, and applying it again gives the same counts.
func TestOrderCountsMigration(t *testing.T) {
	dsn := testenv.Database(t)
	db, item := itemDB(t, dsn, 100)
	ctx := context.Background()
	other, err := db.AddItem(ctx, &flashgate.Item{ActivityID: activityOf(t, db, item), Name: "other", Price: 990, Points: 990, Stock: 10, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	unmigrate(t, db, "006_order_counts",
		"DROP TABLE seckill_order_count",
		"ALTER TABLE seckill_order ADD KEY idx_order_item_status (item_id, status)")
	// Rows as the previous release wrote them, without counters.
	ids := flashgate.NewOrderIDs()
	statuses := []flashgate.OrderStatus{flashgate.OrderUnpaid, flashgate.OrderPaid, flashgate.OrderCancelled, flashgate.OrderRefunded}
	for i := range 37 {
		it := item
		if i%5 == 0 {
			it = other
		}
		if _, err := db.Exec("INSERT INTO seckill_order (order_id, item_id, user_id, amount, status, created_at) VALUES (?, ?, ?, 9.90, ?, NOW(3))",
			ids.New(it), it, i+1, string(statuses[i%len(statuses)])); err != nil {
			t.Fatal(err)
		}
	}
	want, wantOther := rowCounts(t, db, item), rowCounts(t, db, other)
	if want.Unpaid == 0 || want.Paid == 0 || want.Cancelled == 0 || want.Refunded == 0 || wantOther == (mysql.OrderCounts{}) {
		t.Fatalf("test rows: %+v, %+v", want, wantOther)
	}
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "migrated", &want)
	checkCounts(t, db, other, "migrated, other item", &wantOther)
	var n int
	if err := db.Get(&n, "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name = 'idx_order_item_status'"); err != nil || n != 0 {
		t.Errorf("idx_order_item_status: %d index columns left (%v), want none", n, err)
	}
	// A payment after the migration, then the migration once more (as
	// after a failure midway): counted afresh, not added twice.
	if _, err := db.WriteReservations(ctx, []flashgate.Reservation{{OrderID: ids.New(item), ItemID: item, UserID: 1000, Amount: 990, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	want.Unpaid++
	checkCounts(t, db, item, "written after the migration", &want)
	if _, err := db.Exec("DELETE FROM schema_migrations WHERE version = '006_order_counts'"); err != nil {
		t.Fatal(err)
	}
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, item, "migrated twice", &want)
	checkCounts(t, db, other, "migrated twice, other item", &wantOther)
}
