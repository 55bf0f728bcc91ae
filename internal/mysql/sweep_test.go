package mysql_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/testenv"
)

// sweepKit writes orders of one item created at chosen times, with
// flashgate's order ids, and sweeps them.
type sweepKit struct {
	t    *testing.T
	db   *mysql.DB
	item int64
	ids  *flashgate.OrderIDs
	user int64
}

func newSweepKit(t *testing.T, stock int64) *sweepKit {
	db, item := itemDB(t, testenv.Database(t), stock)
	return &sweepKit{t: t, db: db, item: item, ids: flashgate.NewOrderIDs()}
}

// at is a reservation of a new buyer created at t, with an id of t.
func (k *sweepKit) at(t time.Time) flashgate.Reservation {
	k.user++
	return flashgate.Reservation{OrderID: string(k.ids.Append(nil, k.item, t)), ItemID: k.item, UserID: k.user,
		Amount: 990, At: t.UTC().Truncate(time.Millisecond)}
}

func (k *sweepKit) write(rs ...flashgate.Reservation) mysql.WriteResult {
	k.t.Helper()
	res, err := k.db.WriteReservations(context.Background(), rs)
	if err != nil {
		k.t.Fatal(err)
	}
	return res
}

// sweep runs the sweep the way payment.Service.Expire does, to the end,
// and returns the ids it cancelled and those it found with a trade.
func (k *sweepKit) sweep(cutoff time.Time, limit int) (cancelled, open []string) {
	k.t.Helper()
	cursor := mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}
	for range 1000 {
		sw, err := k.db.SweepExpired(context.Background(), cutoff, cursor, limit, time.Now())
		if err != nil {
			k.t.Fatal(err)
		}
		for _, o := range sw.Cancelled {
			cancelled = append(cancelled, o.ID)
		}
		for _, o := range sw.Open {
			open = append(open, o.ID)
		}
		if sw.Seen < limit {
			sort.Strings(cancelled)
			sort.Strings(open)
			return cancelled, open
		}
		cursor = sw.Next
	}
	k.t.Fatal("the sweep did not end")
	return nil, nil
}

func (k *sweepKit) status(id string) flashgate.OrderStatus {
	k.t.Helper()
	o, err := k.db.Order(context.Background(), id)
	if err != nil || o == nil {
		k.t.Fatalf("order %s: %v, %v", id, o, err)
	}
	return o.Status
}

func (k *sweepKit) stockLeft() int64 {
	k.t.Helper()
	var left int64
	if err := k.db.Get(&left, "SELECT stock_left FROM seckill_item WHERE id = ?", k.item); err != nil {
		k.t.Fatal(err)
	}
	return left
}

func (k *sweepKit) pending() []string {
	k.t.Helper()
	var ids []string
	if err := k.db.Select(&ids, "SELECT order_id FROM seckill_sweep_pending ORDER BY order_id"); err != nil {
		k.t.Fatal(err)
	}
	return ids
}

// checkRestockQueue compares the restocker's queue with the rows it stands
// for: every cancelled or refunded order with restocked = 0, and no other.
func checkRestockQueue(t testing.TB, db *mysql.DB, step string) {
	t.Helper()
	var queued, rows []string
	if err := db.Select(&queued, "SELECT order_id FROM seckill_restock ORDER BY order_id"); err != nil {
		t.Fatal(err)
	}
	if err := db.Select(&rows, "SELECT order_id FROM seckill_order WHERE status IN ('cancelled', 'refunded') AND restocked = 0 ORDER BY order_id"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(queued) != fmt.Sprint(rows) {
		t.Errorf("%s: restock queue %v, closed orders not restocked %v", step, queued, rows)
	}
}

// restockAll does what the worker's restocker does to MySQL, and returns
// the ids it was given.
func restockAll(t testing.TB, db *mysql.DB) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Unrestocked(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		if err := db.MarkRestocked(ctx, r.OrderID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.OrderID)
	}
	sort.Strings(ids)
	return ids
}

func ids(rs ...flashgate.Reservation) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.OrderID
	}
	sort.Strings(out)
	return out
}

// TestSweepExpiresByCreation: the sweep cancels the unpaid orders created
// before the cutoff, whatever their number against the batch size, and
// nothing else; their units go back to stock_left and to the restocker,
// once.
func TestSweepExpiresByCreation(t *testing.T) {
	k := newSweepKit(t, 100)
	now := time.Now()
	cutoff := now.Add(-10 * time.Minute)
	var old, fresh []flashgate.Reservation
	for i := range 23 {
		old = append(old, k.at(cutoff.Add(-time.Duration(23-i)*time.Second)))
	}
	for i := range 5 {
		fresh = append(fresh, k.at(cutoff.Add(time.Duration(i+1)*time.Millisecond)))
	}
	paid := k.at(cutoff.Add(-time.Hour))
	k.write(append(append(old, fresh...), paid)...)
	if _, _, err := k.db.ApplyPayment(context.Background(), mysql.ChannelReport{OrderID: paid.OrderID, Channel: mysql.ChannelAlipay,
		NotifyID: "n", TradeNo: "T", TradeStatus: mysql.PaySuccess, Amount: 990, Paid: true, Content: "{}", At: now}); err != nil {
		t.Fatal(err)
	}
	if left := k.stockLeft(); left != 100-29 {
		t.Fatalf("stock_left %d before the sweep", left)
	}
	cancelled, open := k.sweep(cutoff, 5) // 5 batches and more
	if fmt.Sprint(cancelled) != fmt.Sprint(ids(old...)) || len(open) != 0 {
		t.Errorf("cancelled %v (open %v), want %v", cancelled, open, ids(old...))
	}
	for _, r := range fresh {
		if s := k.status(r.OrderID); s != flashgate.OrderUnpaid {
			t.Errorf("order created after the cutoff is %s", s)
		}
	}
	if s := k.status(paid.OrderID); s != flashgate.OrderPaid {
		t.Errorf("paid order is %s", s)
	}
	if left := k.stockLeft(); left != 100-6 {
		t.Errorf("stock_left %d, want %d", left, 100-6)
	}
	checkRestockQueue(t, k.db, "after the sweep")
	if again, _ := k.sweep(cutoff, 5); len(again) != 0 {
		t.Errorf("a second sweep cancelled %v", again)
	}
	if got := restockAll(t, k.db); fmt.Sprint(got) != fmt.Sprint(ids(old...)) {
		t.Errorf("restocker got %v, want %v", got, ids(old...))
	}
	if got := restockAll(t, k.db); len(got) != 0 {
		t.Errorf("restocker got %v a second time", got)
	}
	checkRestockQueue(t, k.db, "after the restocker")
	// Later, the fresh ones expire too.
	if cancelled, _ := k.sweep(now, 5); fmt.Sprint(cancelled) != fmt.Sprint(ids(fresh...)) {
		t.Errorf("second cutoff cancelled %v, want %v", cancelled, ids(fresh...))
	}
	if len(k.pending()) != 0 {
		t.Errorf("pending %v, want none", k.pending())
	}
}

// TestSweepLateInsert: a reservation that reaches MySQL after the sweep has
// passed its order id is stored expired (cancelled, its unit going back
// once), and one the sweep has not reached yet is written as usual and
// swept later.
func TestSweepLateInsert(t *testing.T) {
	k := newSweepKit(t, 10)
	now := time.Now()
	cutoff := now.Add(-10 * time.Minute)
	first := k.at(cutoff.Add(-time.Minute))
	k.write(first)
	k.sweep(cutoff, 50)
	late := k.at(cutoff.Add(-30 * time.Second)) // below the mark now
	notYet := k.at(cutoff.Add(time.Second))     // above it
	res := k.write(late, notYet)
	if res.Expired != 1 || res.Inserted != 1 {
		t.Fatalf("%+v, want 1 expired and 1 inserted", res)
	}
	if s := k.status(late.OrderID); s != flashgate.OrderCancelled {
		t.Errorf("late order is %s, want cancelled", s)
	}
	if left := k.stockLeft(); left != 9 { // first back, late never taken, notYet taken
		t.Errorf("stock_left %d, want 9", left)
	}
	checkRestockQueue(t, k.db, "after the late insert")
	checkCounts(t, k.db, k.item, "after the late insert", &mysql.OrderCounts{Unpaid: 1, Cancelled: 2})
	// Its replay changes nothing.
	if res := k.write(late); res.Replayed != 1 || res.Expired != 0 {
		t.Errorf("replay: %+v", res)
	}
	if cancelled, _ := k.sweep(cutoff.Add(2*time.Second), 50); fmt.Sprint(cancelled) != fmt.Sprint(ids(notYet)) {
		t.Errorf("second sweep cancelled %v, want %v", cancelled, ids(notYet))
	}
	if left := k.stockLeft(); left != 10 {
		t.Errorf("stock_left %d, want 10", left)
	}
	if got := restockAll(t, k.db); fmt.Sprint(got) != fmt.Sprint(ids(first, late, notYet)) {
		t.Errorf("restocker got %v, want %v", got, ids(first, late, notYet))
	}
	checkRestockQueue(t, k.db, "after the restocker")
}

// TestSweepHeldRow: a row another transaction holds (a payment in
// progress) is skipped, and the sweep comes back to it although the mark
// has moved on: cancelled if still unpaid, forgotten if paid.
func TestSweepHeldRow(t *testing.T) {
	k := newSweepKit(t, 10)
	ctx := context.Background()
	now := time.Now()
	cutoff := now.Add(-10 * time.Minute)
	held, paid, free := k.at(cutoff.Add(-3*time.Second)), k.at(cutoff.Add(-2*time.Second)), k.at(cutoff.Add(-time.Second))
	k.write(held, paid, free)
	tx, err := k.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tx2, err := k.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT * FROM seckill_order WHERE order_id = ? FOR UPDATE", held.OrderID); err != nil {
		t.Fatal(err)
	}
	// A payment that commits after the sweep passed, by hand (the order
	// counts do not follow it, so they are not checked here).
	if _, err := tx2.ExecContext(ctx, "UPDATE seckill_order SET status = 'paid', paid_at = NOW(3) WHERE order_id = ?", paid.OrderID); err != nil {
		t.Fatal(err)
	}
	cancelled, _ := k.sweep(cutoff, 50)
	if fmt.Sprint(cancelled) != fmt.Sprint(ids(free)) {
		t.Errorf("sweep while held cancelled %v, want %v", cancelled, ids(free))
	}
	if fmt.Sprint(k.pending()) != fmt.Sprint(ids(held, paid)) {
		t.Errorf("pending %v, want %v", k.pending(), ids(held, paid))
	}
	tx.Rollback()
	if err := tx2.Commit(); err != nil {
		t.Fatal(err)
	}
	cancelled, _ = k.sweep(cutoff, 50)
	if fmt.Sprint(cancelled) != fmt.Sprint(ids(held)) {
		t.Errorf("sweep after the release cancelled %v, want %v", cancelled, ids(held))
	}
	if len(k.pending()) != 0 {
		t.Errorf("pending %v, want none", k.pending())
	}
	checkRestockQueue(t, k.db, "after the sweeps")
}

// TestSweepOpenTrade: an expired order with an Alipay trade goes to the
// caller on every sweep until the caller settles it, the mark moving on
// meanwhile.
func TestSweepOpenTrade(t *testing.T) {
	k := newSweepKit(t, 10)
	ctx := context.Background()
	now := time.Now()
	r := k.at(now.Add(-time.Second))
	k.write(r)
	if _, err := k.db.OpenAlipay(ctx, r.OrderID, r.UserID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		cancelled, open := k.sweep(now, 50)
		if len(cancelled) != 0 || fmt.Sprint(open) != fmt.Sprint(ids(r)) {
			t.Errorf("sweep %d: cancelled %v, open %v", i, cancelled, open)
		}
	}
	if done, _, err := k.db.CancelUnpaid(ctx, r.OrderID, now); err != nil || !done {
		t.Fatalf("cancel: %v, %v", done, err)
	}
	if cancelled, open := k.sweep(now, 50); len(cancelled)+len(open) != 0 {
		t.Errorf("after the cancel: cancelled %v, open %v", cancelled, open)
	}
	if len(k.pending()) != 0 {
		t.Errorf("pending %v, want none", k.pending())
	}
	checkRestockQueue(t, k.db, "after the cancel")
}

// TestSweepIDsNotKeyed: orders whose ids are not flashgate's, or do not
// begin with their creation time, expire by created_at like the others,
// wherever their ids sort.
func TestSweepIDsNotKeyed(t *testing.T) {
	k := newSweepKit(t, 10)
	now := time.Now().UTC().Truncate(time.Millisecond)
	cutoff := now.Add(-10 * time.Minute)
	res := func(id string, at time.Time) flashgate.Reservation {
		k.user++
		return flashgate.Reservation{OrderID: id, ItemID: k.item, UserID: k.user, Amount: 990, At: at}
	}
	oldHigh := res("order-1", cutoff.Add(-time.Minute))                                                   // above every prefix
	freshLow := res("0 low", cutoff.Add(time.Minute))                                                     // below every mark
	oldTab := res("odd\tid", cutoff.Add(-time.Minute))                                                    // the INSERT path
	freshKeyed := res(k.ids.New(k.item), now.Add(time.Minute))                                            // an id of now, created later
	mislabeled := res(string(k.ids.Append(nil, k.item, cutoff.Add(-time.Hour))), cutoff.Add(time.Minute)) // id of an hour ago, created after the cutoff
	k.write(oldHigh, freshLow, oldTab, freshKeyed, mislabeled)
	cancelled, _ := k.sweep(cutoff, 2)
	if fmt.Sprint(cancelled) != fmt.Sprint(ids(oldHigh, oldTab)) {
		t.Errorf("cancelled %v, want %v", cancelled, ids(oldHigh, oldTab))
	}
	// The mark is past "0 low" and the mislabeled id now; a replay of
	// them is no late insert.
	if res := k.write(freshLow, mislabeled); res.Expired != 0 || res.Replayed != 2 {
		t.Errorf("replay: %+v", res)
	}
	cancelled, _ = k.sweep(cutoff.Add(2*time.Minute), 2)
	if fmt.Sprint(cancelled) != fmt.Sprint(ids(freshLow, mislabeled)) {
		t.Errorf("later cancelled %v, want %v", cancelled, ids(freshLow, mislabeled))
	}
	if s := k.status(freshKeyed.OrderID); s != flashgate.OrderUnpaid {
		t.Errorf("order created after the cutoff is %s", s)
	}
	checkRestockQueue(t, k.db, "after the sweeps")
}

// TestRestockQueueFollowsEveryPath takes orders through every change that
// closes one (conflict and guard at insert, cancel, refunds, the sweep, a
// late insert) and compares the restocker's queue with the rows after each.
func TestRestockQueueFollowsEveryPath(t *testing.T) {
	k := newSweepKit(t, 4)
	ctx := context.Background()
	now := time.Now()
	a, b, c := k.at(now), k.at(now), k.at(now)
	dup := a
	dup.OrderID = string(k.ids.Append(nil, k.item, now))
	dup.At = a.At
	k.write(a, b, dup)
	checkRestockQueue(t, k.db, "conflict")
	over1, over2 := k.at(now), k.at(now)
	k.write(c, over1, over2) // stock 4: a, b, c, over1; over2 guarded
	checkRestockQueue(t, k.db, "guarded")
	if _, err := k.db.GrantPoints(ctx, b.UserID, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := k.db.PayWithPoints(ctx, b.OrderID, b.UserID, 990, time.Time{}, now); err != nil {
		t.Fatal(err)
	}
	checkRestockQueue(t, k.db, "paid")
	if _, err := k.db.RefundPoints(ctx, b.OrderID, b.UserID, b.OrderID+"-R", now); err != nil {
		t.Fatal(err)
	}
	checkRestockQueue(t, k.db, "refunded with points")
	if _, _, err := k.db.ApplyPayment(ctx, mysql.ChannelReport{OrderID: c.OrderID, Channel: mysql.ChannelAlipay, NotifyID: "n",
		TradeNo: "T", TradeStatus: mysql.PaySuccess, Amount: 990, Paid: true, Content: "{}", At: now}); err != nil {
		t.Fatal(err)
	}
	if done, _, err := k.db.MarkRefunded(ctx, c.OrderID, mysql.ChannelAlipay, c.OrderID+"-R", "T", now); err != nil || !done {
		t.Fatalf("refund: %v, %v", done, err)
	}
	checkRestockQueue(t, k.db, "refunded")
	if done, _, err := k.db.CancelUnpaid(ctx, a.OrderID, now); err != nil || !done {
		t.Fatalf("cancel: %v, %v", done, err)
	}
	checkRestockQueue(t, k.db, "cancelled")
	restockAll(t, k.db)
	checkRestockQueue(t, k.db, "restocked")
	k.sweep(now.Add(time.Second), 50) // over1
	checkRestockQueue(t, k.db, "swept")
	late := k.at(now.Add(-time.Minute))
	if res := k.write(late); res.Expired != 1 {
		t.Fatalf("late: %+v", res)
	}
	checkRestockQueue(t, k.db, "late insert")
	checkCounts(t, k.db, k.item, "late insert", nil)
	if got := restockAll(t, k.db); fmt.Sprint(got) != fmt.Sprint(ids(over1, late)) {
		t.Errorf("restocker got %v, want %v", got, ids(over1, late))
	}
	checkRestockQueue(t, k.db, "restocked again")
}

// TestSweepConcurrent runs sweepers side by side with writers whose
// reservations arrive late (some below the mark), payers and cancels:
// no error, every order created before the last cutoff ends closed or
// paid, no unit returned twice (stock_left matches the live orders), and
// the restock queue matches the rows.
func TestSweepConcurrent(t *testing.T) {
	const writers, batches, size, sweepers = 2, 30, 20, 3
	stock := int64(writers * batches * size)
	k := newSweepKit(t, stock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex // k.user and k.ids are shared
	errc := make(chan error, 16)
	var writing sync.WaitGroup
	written := make(chan flashgate.Reservation, stock)
	for range writers {
		writing.Go(func() {
			for b := range batches {
				now := time.Now()
				rs := make([]flashgate.Reservation, size)
				mu.Lock()
				for i := range rs {
					// Created up to 200 ms before now: the sweepers' cutoff
					// is now - 100 ms, so many arrive below the mark.
					rs[i] = k.at(now.Add(-time.Duration((b*7+i*13)%200) * time.Millisecond))
				}
				mu.Unlock()
				if _, err := k.db.WriteReservations(ctx, rs); err != nil {
					errc <- fmt.Errorf("write: %w", err)
					return
				}
				for _, r := range rs {
					written <- r
				}
			}
		})
	}
	go func() { writing.Wait(); close(written) }()
	var side sync.WaitGroup
	for p := range 2 {
		side.Go(func() {
			for r := range written {
				var err error
				if p == 0 {
					_, _, err = k.db.ApplyPayment(ctx, mysql.ChannelReport{OrderID: r.OrderID, Channel: mysql.ChannelAlipay,
						NotifyID: "n-" + r.OrderID, TradeNo: "T-" + r.OrderID, TradeStatus: mysql.PaySuccess, Amount: 990, Paid: true, Content: "{}", At: time.Now()})
				} else if r.UserID%3 == 0 {
					_, _, err = k.db.CancelUnpaid(ctx, r.OrderID, time.Now())
				}
				if err != nil {
					errc <- fmt.Errorf("pay or cancel: %w", err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var sweeping sync.WaitGroup
	var swept sync.Map
	for range sweepers {
		sweeping.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sw, err := k.db.SweepExpired(ctx, time.Now().Add(-100*time.Millisecond), mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}, 7, time.Now())
				if err != nil {
					errc <- fmt.Errorf("sweep: %w", err)
					return
				}
				for _, o := range sw.Cancelled {
					if _, dup := swept.LoadOrStore(o.ID, true); dup {
						errc <- fmt.Errorf("order %s cancelled by two sweeps", o.ID)
						return
					}
				}
			}
		})
	}
	writing.Wait()
	side.Wait()
	close(stop)
	sweeping.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	k.sweep(time.Now().Add(time.Second), 50)
	var unpaid int
	if err := k.db.Get(&unpaid, "SELECT COUNT(*) FROM seckill_order WHERE status = 'unpaid'"); err != nil || unpaid != 0 {
		t.Errorf("%d unpaid orders left after the last sweep (%v)", unpaid, err)
	}
	var live int64
	if err := k.db.Get(&live, "SELECT COUNT(*) FROM seckill_order WHERE status IN ('unpaid', 'paid')"); err != nil {
		t.Fatal(err)
	}
	if left := k.stockLeft(); left != stock-live {
		t.Errorf("stock_left %d, want %d (stock %d, %d live orders)", left, stock-live, stock, live)
	}
	checkRestockQueue(t, k.db, "after the storm")
	checkCounts(t, k.db, k.item, "after the storm", nil)
	var expired int
	if err := k.db.Get(&expired, "SELECT COUNT(*) FROM seckill_order WHERE status = 'cancelled'"); err != nil || expired == 0 {
		t.Errorf("%d cancelled orders (%v), want some", expired, err)
	}
}

// TestSweepMigration applies migration 007 to a database as it was before
// it (idx_order_sweep, no queue, mark or pending list) that has orders: the
// restock queue and the pending list start from the rows, the index is
// gone, and the sweep and a late insert work from there.
func TestSweepMigration(t *testing.T) {
	dsn := testenv.Database(t)
	db, item := itemDB(t, dsn, 100)
	ctx := context.Background()
	unmigrate(t, db, "007_sweep_mark",
		"DROP TABLE seckill_sweep_mark, seckill_sweep_pending, seckill_restock",
		"ALTER TABLE seckill_order ADD KEY idx_order_sweep (status, restocked, created_at)")
	gen := flashgate.NewOrderIDs()
	now := time.Now().UTC().Truncate(time.Millisecond)
	cutoff := now.Add(-10 * time.Minute)
	type row struct {
		id        string
		status    string
		restocked int
		at        time.Time
	}
	keyedAt := func(t time.Time) string { return string(gen.Append(nil, item, t)) }
	rows := []row{
		{keyedAt(cutoff.Add(-time.Hour)), "unpaid", 0, cutoff.Add(-time.Hour)},    // expired
		{"legacy-7", "unpaid", 0, cutoff.Add(-time.Hour)},                         // expired, id not keyed
		{keyedAt(cutoff.Add(time.Minute)), "unpaid", 0, cutoff.Add(time.Minute)},  // not yet
		{keyedAt(cutoff.Add(-time.Hour)), "paid", 0, cutoff.Add(-time.Hour)},      // paid
		{keyedAt(cutoff.Add(-time.Hour)), "cancelled", 0, cutoff.Add(-time.Hour)}, // to restock
		{keyedAt(cutoff.Add(-time.Hour)), "refunded", 0, cutoff.Add(-time.Hour)},  // to restock
		{keyedAt(cutoff.Add(-time.Hour)), "cancelled", 1, cutoff.Add(-time.Hour)}, // restocked
	}
	for i, r := range rows {
		if _, err := db.Exec("INSERT INTO seckill_order (order_id, item_id, user_id, amount, status, created_at, restocked) VALUES (?, ?, ?, 9.90, ?, ?, ?)",
			r.id, item, i+1, r.status, r.at, r.restocked); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("UPDATE seckill_item SET stock_left = stock_left - 4 WHERE id = ?", item); err != nil { // 3 unpaid, 1 paid
		t.Fatal(err)
	}
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	checkRestockQueue(t, db, "migrated")
	var n int
	if err := db.Get(&n, "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name = 'idx_order_sweep'"); err != nil || n != 0 {
		t.Errorf("idx_order_sweep: %d index columns left (%v), want none", n, err)
	}
	k := &sweepKit{t: t, db: db, item: item, ids: gen, user: 100}
	if fmt.Sprint(k.pending()) != fmt.Sprint([]string{rows[0].id, rows[2].id, rows[1].id}) {
		t.Errorf("pending %v, want the three unpaid orders", k.pending())
	}
	cancelled, _ := k.sweep(cutoff, 2)
	want := []string{rows[0].id, rows[1].id}
	sort.Strings(want)
	if fmt.Sprint(cancelled) != fmt.Sprint(want) {
		t.Errorf("cancelled %v, want %v", cancelled, want)
	}
	if res := k.write(k.at(cutoff.Add(-time.Minute))); res.Expired != 1 {
		t.Errorf("late insert after the migration: %+v, want 1 expired", res)
	}
	checkRestockQueue(t, db, "swept")
	// Run again (as after a failure midway): nothing added twice.
	if _, err := db.Exec("DELETE FROM schema_migrations WHERE version = '007_sweep_mark'"); err != nil {
		t.Fatal(err)
	}
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	checkRestockQueue(t, db, "migrated twice")
	if cancelled, _ := k.sweep(cutoff, 2); len(cancelled) != 0 {
		t.Errorf("after the second migration the sweep cancelled %v", cancelled)
	}
}
