package mysql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/testenv"
)

// itemDB migrates the database of dsn (dropped at the end) and creates an
// item with stock units in it.
func itemDB(t testing.TB, dsn string, stock int64) (*mysql.DB, int64) {
	t.Helper()
	ctx := context.Background()
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	db, err := mysql.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS `" + dbName(t, db) + "`")
		db.Close()
	})
	now := time.Now()
	act, err := db.CreateActivity(ctx, &flashgate.Activity{Name: "orders", StartAt: now, EndAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	item, err := db.AddItem(ctx, &flashgate.Item{ActivityID: act, Name: "orders", Price: 990, Points: 990, Stock: stock, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	return db, item
}

// unmigrate takes migration version back out of db: it runs undo, the
// statements that revert it, then forgets the version, so that a test can
// write rows as the release before it did and migrate again.
func unmigrate(t testing.TB, db *mysql.DB, version string, undo ...string) {
	t.Helper()
	for _, q := range append(undo, "DELETE FROM schema_migrations WHERE version = '"+version+"'") {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func dbName(t testing.TB, db *mysql.DB) string {
	var name string
	if err := db.Get(&name, "SELECT DATABASE()"); err != nil {
		t.Fatal(err)
	}
	return name
}

// checkWrites writes a batch twice over db's item: fresh reservations, one
// of them a second live order of a user, then the same batch again (a
// replay), and a batch beyond the stock; and checks what became of each,
// row by row. Both ways of inserting (LOAD DATA and INSERT) must pass it.
func checkWrites(t *testing.T, db *mysql.DB, item int64) {
	t.Helper()
	ctx := context.Background()
	ids := flashgate.NewOrderIDs()
	at := time.Now().UTC().Truncate(time.Millisecond)
	r := func(user int64) flashgate.Reservation {
		return flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: user, Amount: 990, At: at}
	}
	// An id with a tab cannot go into LOAD DATA's unescaped lines: it
	// takes the INSERT on every server. (The worker refuses such ids, see
	// ValidOrderID; WriteReservations still stores them as they are.)
	odd := flashgate.Reservation{OrderID: "odd\tid", ItemID: item, UserID: 4, Amount: 990, At: at}
	batch := []flashgate.Reservation{r(1), r(2), r(1), r(3)}
	res, err := db.WriteReservations(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 3 || res.Conflicts != 1 || res.Replayed != 0 || res.Guarded != 0 {
		t.Errorf("first batch: %+v, want 3 inserted and 1 conflict", res)
	}
	res, err = db.WriteReservations(ctx, append(batch, odd))
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 1 || res.Replayed != 4 || res.Conflicts != 0 {
		t.Errorf("replay: %+v, want 1 inserted (the odd id) and 4 replayed", res)
	}
	// Stock 5: one unit left, two new buyers; the first in order id wins.
	late := []flashgate.Reservation{r(5), r(6)}
	res, err = db.WriteReservations(ctx, late)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 1 || res.Guarded != 1 || len(res.GuardedOrders) != 1 || res.GuardedOrders[0].OrderID != late[1].OrderID {
		t.Errorf("beyond the stock: %+v, want 1 inserted and %s guarded", res, late[1].OrderID)
	}
	want := map[string]flashgate.OrderStatus{batch[0].OrderID: flashgate.OrderUnpaid, batch[1].OrderID: flashgate.OrderUnpaid,
		batch[2].OrderID: flashgate.OrderCancelled, batch[3].OrderID: flashgate.OrderUnpaid, odd.OrderID: flashgate.OrderUnpaid,
		late[0].OrderID: flashgate.OrderUnpaid, late[1].OrderID: flashgate.OrderCancelled}
	for id, st := range want {
		o, err := db.Order(ctx, id)
		if err != nil || o == nil {
			t.Fatalf("order %q: %v, %v", id, o, err)
		}
		if o.Status != st || o.ItemID != item || o.Amount != 990 || !o.CreatedAt.Equal(at) {
			t.Errorf("order %q: %+v, want %s at %v", id, o, st, at)
		}
	}
	var left int
	if err := db.Get(&left, "SELECT stock_left FROM seckill_item WHERE id = ?", item); err != nil || left != 0 {
		t.Errorf("stock_left %d (%v), want 0", left, err)
	}
	var restocked []bool
	if err := db.Select(&restocked, "SELECT restocked FROM seckill_order WHERE order_id IN (?, ?) ORDER BY order_id", batch[2].OrderID, late[1].OrderID); err != nil {
		t.Fatal(err)
	}
	if len(restocked) != 2 || restocked[0] || !restocked[1] {
		t.Errorf("restocked of the conflict and the guarded order: %v, want [false true]", restocked)
	}
}

func TestWriteReservations(t *testing.T) {
	db, item := itemDB(t, testenv.Database(t), 5)
	checkWrites(t, db, item)
	if !mysql.LoadsData(db) {
		t.Error("the shared server (local_infile=ON) refused LOAD DATA LOCAL INFILE")
	}
}

// TestWriteReservationsWithoutLocalInfile writes on a server that refuses
// LOAD DATA LOCAL INFILE: the same rows go in with INSERT.
func TestWriteReservationsWithoutLocalInfile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mariadbd of its own")
	}
	addr, _ := testenv.StartPlainMariaDB(t, "--local-infile=0")
	db, item := itemDB(t, "root@tcp("+addr+")/orders?parseTime=true", 5)
	checkWrites(t, db, item)
	if mysql.LoadsData(db) {
		t.Error("LOAD DATA LOCAL INFILE still in use on a server that refuses it")
	}
}

func TestValidOrderID(t *testing.T) {
	long := strings.Repeat("A", 64)
	for id, want := range map[string]bool{
		flashgate.NewOrderIDs().New(12): true, "o1": true, long: true,
		"": false, long + "A": false, "caf\u00e9": false, "a\tb": false, "a\nb": false,
	} {
		if got := mysql.ValidOrderID(id); got != want {
			t.Errorf("ValidOrderID(%q) = %v, want %v", id, got, want)
		}
	}
}
