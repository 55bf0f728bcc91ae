package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate"
)

// WriteResult says what WriteReservations did with a batch.
type WriteResult struct {
	Inserted  int // new unpaid orders
	Replayed  int // reservations whose row already existed
	Conflicts int // reservations refused by the one-live-order rule, stored cancelled
	Guarded   int // reservations refused by the MySQL stock guard, stored cancelled
	// Expired are reservations that reached MySQL after the expiry sweep
	// had passed their order ids, stored cancelled at once (see sweep.go).
	Expired int
	// GuardedOrders are the reservations refused by the stock guard in
	// this call: their buyers' duplicate marks are to be cleared (their
	// units never existed, so they are not returned to stock).
	GuardedOrders []flashgate.Reservation

	closed  []string // order ids stored cancelled with their unit to go back
	unkeyed []string // order ids the sweep's walk does not find (sweep.go)
}

// WriteReservations turns reservations into order rows in one transaction:
// multi-row INSERT IGNORE per item (the order id is the primary key, so a
// reservation seen twice writes once), the item's stock_left decremented by
// the rows inserted with a guard (stock_left >= n), and reservations that a
// live order of the same user already holds stored as cancelled so that
// their unit goes back (restocked = 0) and nothing accepted goes missing.
// The rows written are added to the items' order counts (counts.go) in the
// same transaction, in one statement.
//
// It holds the expiry sweep's mark shared (sweep.go): a reservation whose
// order id the sweep has walked past already is stored cancelled, expired,
// its unit going back, as the sweep would have done had it come in time;
// one whose id the walk cannot find is listed for the sweep by created_at.
// Closed orders whose units go back are queued for the restocker.
func (db *DB) WriteReservations(ctx context.Context, rs []flashgate.Reservation) (WriteResult, error) {
	byItem := map[int64][]flashgate.Reservation{}
	var items []int64
	for _, r := range rs {
		if _, ok := byItem[r.ItemID]; !ok {
			items = append(items, r.ItemID)
		}
		byItem[r.ItemID] = append(byItem[r.ItemID], r)
	}
	sort.Slice(items, func(i, j int) bool { return items[i] < items[j] }) // lock order

	guarded := map[int64]bool{}
	for attempt := 0; ; attempt++ {
		var res WriteResult
		err := db.inTx(ctx, func(tx *sqlx.Tx) error {
			return db.writeItems(ctx, tx, items, byItem, guarded, &res)
		})
		var ge *guardError
		if errors.As(err, &ge) && attempt < len(items) {
			guarded[ge.item] = true
			continue
		}
		if err != nil {
			return WriteResult{}, err
		}
		return res, nil
	}
}

// writeItems is one attempt of WriteReservations, in its transaction: the
// items in id order (the lock order), then the restock queue, the sweep's
// pending list and the order counters. The items in guarded go through
// writeGuarded.
func (db *DB) writeItems(ctx context.Context, tx *sqlx.Tx, items []int64, byItem map[int64][]flashgate.Reservation, guarded map[int64]bool, res *WriteResult) error {
	// First of all locks: the sweep takes the mark, then orders, then
	// items.
	mark, err := sweepMark(ctx, tx, "LOCK IN SHARE MODE")
	if err != nil {
		return err
	}
	counts := make([]countDelta, 0, 2*len(items))
	for _, item := range items {
		w := itemWrite{db: db, tx: tx, item: item, res: res, before: *res}
		if err := w.write(ctx, byItem[item], mark, guarded[item]); err != nil {
			return err
		}
		counts = append(counts, w.counts()...)
	}
	if err := queueRestock(ctx, tx, res.closed); err != nil {
		return err
	}
	if err := pendOrders(ctx, tx, res.unkeyed); err != nil {
		return err
	}
	return addCounts(ctx, tx, counts)
}

// itemWrite writes one item's reservations in WriteReservations's
// transaction and adds what it did to res.
type itemWrite struct {
	db     *DB
	tx     *sqlx.Tx
	item   int64
	res    *WriteResult
	before WriteResult // res when the item began: the item's rows are the difference
	// locked: the transaction holds the item's row lock, under which its
	// slot 0 counters are written. A stock update or the guard takes it;
	// rows that take no stock (conflicts, expired) take it through lock.
	locked bool
}

func (w *itemWrite) write(ctx context.Context, rs []flashgate.Reservation, mark string, guarded bool) error {
	batch, expired := splitExpired(rs, mark, w.res)
	if err := w.writeExpired(ctx, expired); err != nil {
		return err
	}
	switch {
	case len(batch) == 0:
	case guarded:
		if err := w.db.writeGuarded(ctx, w.tx, w.item, batch, w.res); err != nil {
			return err
		}
		w.locked = true // writeGuarded read the item's row FOR UPDATE
	default:
		if err := w.writeLive(ctx, batch); err != nil {
			return err
		}
	}
	if w.res.Expired > w.before.Expired {
		return w.lock(ctx) // for the expired rows' counters
	}
	return nil
}

// writeExpired stores the reservations whose orders expired before they
// reached MySQL: cancelled, no unit taken from stock_left, their units to
// go back.
func (w *itemWrite) writeExpired(ctx context.Context, expired []flashgate.Reservation) error {
	if len(expired) == 0 {
		return nil
	}
	k, err := w.db.insertOrders(ctx, w.tx, expired, flashgate.OrderCancelled, false)
	if err != nil {
		return err
	}
	w.res.Expired += k
	w.res.Replayed += len(expired) - k
	w.res.closed = append(w.res.closed, ids(expired)...)
	return nil
}

// writeLive inserts the new unpaid orders and takes their units from
// stock_left under the guard (a refusal is a guardError: the caller tries
// the item again through writeGuarded). The reservations not inserted are
// replays, or refused by uk_order_live (their users hold a live order
// already): those are stored cancelled, their units to go back.
func (w *itemWrite) writeLive(ctx context.Context, batch []flashgate.Reservation) error {
	n, err := w.db.insertOrders(ctx, w.tx, batch, flashgate.OrderUnpaid, false)
	if err != nil {
		return err
	}
	w.res.Inserted += n
	if n > 0 {
		r, err := w.tx.ExecContext(ctx, "UPDATE seckill_item SET stock_left = stock_left - ? WHERE id = ? AND stock_left >= ?", n, w.item, n)
		if err != nil {
			return fmt.Errorf("decrement stock of item %d: %w", w.item, err)
		}
		if k, _ := r.RowsAffected(); k == 0 {
			return &guardError{item: w.item}
		}
		w.locked = true
	}
	if n == len(batch) {
		return nil
	}
	missing, err := missingOrders(ctx, w.tx, batch)
	if err != nil {
		return err
	}
	w.res.Replayed += len(batch) - n - len(missing)
	if len(missing) == 0 {
		return nil
	}
	if err := w.lock(ctx); err != nil { // before the rows, in item order
		return err
	}
	k, err := w.db.insertOrders(ctx, w.tx, missing, flashgate.OrderCancelled, false)
	if err != nil {
		return err
	}
	w.res.Conflicts += k
	w.res.closed = append(w.res.closed, ids(missing)...)
	return nil
}

// lock takes the item's row lock unless the transaction holds it already.
func (w *itemWrite) lock(ctx context.Context) error {
	if w.locked {
		return nil
	}
	if _, err := w.tx.ExecContext(ctx, "SELECT id FROM seckill_item WHERE id = ? FOR UPDATE", w.item); err != nil {
		return fmt.Errorf("lock item %d: %w", w.item, err)
	}
	w.locked = true
	return nil
}

// counts returns the item's new rows, for its slot 0 counters.
func (w *itemWrite) counts() []countDelta {
	r, b := w.res, w.before
	return []countDelta{
		{w.item, flashgate.OrderUnpaid, 0, int64(r.Inserted - b.Inserted)},
		{w.item, flashgate.OrderCancelled, 0, int64(r.Conflicts - b.Conflicts + r.Guarded - b.Guarded + r.Expired - b.Expired)},
	}
}

// writeGuarded writes an item's batch after the stock guard refused it as a
// whole: under the item's row lock it accepts the oldest new reservations
// up to the stock left, stores the rest cancelled (restocked: their units
// never existed in MySQL's count) and lists them in res.GuardedOrders.
func (db *DB) writeGuarded(ctx context.Context, tx *sqlx.Tx, item int64, batch []flashgate.Reservation, res *WriteResult) error {
	var left int
	if err := tx.GetContext(ctx, &left, "SELECT stock_left FROM seckill_item WHERE id = ? FOR UPDATE", item); err != nil {
		return fmt.Errorf("lock item %d: %w", item, err)
	}
	fresh, err := missingOrders(ctx, tx, batch)
	if err != nil {
		return err
	}
	res.Replayed += len(batch) - len(fresh)
	// Order ids sort by time: the first come are served.
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].OrderID < fresh[j].OrderID })
	for len(fresh) > 0 && left > 0 {
		take := fresh[:min(left, len(fresh))]
		fresh = fresh[len(take):]
		n, err := db.insertOrders(ctx, tx, take, flashgate.OrderUnpaid, false)
		if err != nil {
			return err
		}
		if n > 0 {
			if _, err := tx.ExecContext(ctx, "UPDATE seckill_item SET stock_left = stock_left - ? WHERE id = ?", n, item); err != nil {
				return fmt.Errorf("decrement stock of item %d: %w", item, err)
			}
		}
		res.Inserted += n
		left -= n
		if n < len(take) {
			// Refused by the one-live-order rule: stored cancelled, and
			// their places go to the next in line.
			conflicts, err := missingOrders(ctx, tx, take)
			if err != nil {
				return err
			}
			k, err := db.insertOrders(ctx, tx, conflicts, flashgate.OrderCancelled, false)
			if err != nil {
				return err
			}
			res.Conflicts += k
			res.closed = append(res.closed, ids(conflicts)...)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	n, err := db.insertOrders(ctx, tx, fresh, flashgate.OrderCancelled, true)
	if err != nil {
		return err
	}
	res.Guarded += n
	res.GuardedOrders = append(res.GuardedOrders, fresh...)
	return nil
}

// splitExpired returns, of an item's batch, the reservations to write as
// usual and those whose order ids are keyed and below the sweep's mark:
// expired before they arrived. It lists the ids that are not keyed in res.
func splitExpired(batch []flashgate.Reservation, mark string, res *WriteResult) (live, expired []flashgate.Reservation) {
	n := 0
	for _, r := range batch {
		switch {
		case !keyed(r.OrderID, r.At):
			res.unkeyed = append(res.unkeyed, r.OrderID)
		case r.OrderID < mark:
			n++
		}
	}
	if n == 0 {
		return batch, nil
	}
	live = make([]flashgate.Reservation, 0, len(batch)-n)
	for _, r := range batch {
		if keyed(r.OrderID, r.At) && r.OrderID < mark {
			expired = append(expired, r)
		} else {
			live = append(live, r)
		}
	}
	return live, expired
}

func ids(rs []flashgate.Reservation) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.OrderID
	}
	return out
}

type guardError struct{ item int64 }

func (e *guardError) Error() string {
	return fmt.Sprintf("item %d: stock guard refused the batch", e.item)
}

func (db *DB) inTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	return db.inTxOpts(ctx, nil, fn)
}

// inTxOpts runs fn in a transaction with opts, committing when it returns
// nil and rolling back otherwise.
func (db *DB) inTxOpts(ctx context.Context, opts *sql.TxOptions, fn func(*sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// insertOrders inserts rows for rs, all with one status, and returns how
// many were new: a row whose order id (the primary key) or live (item,
// user) pair (uk_order_live) is taken already is skipped, as IGNORE does.
//
// The rows go in as one LOAD DATA LOCAL INFILE fed from memory: MariaDB
// reads tab-separated values without its SQL parser, which costs it less
// CPU per row than the parse of a multi-row INSERT with eight literals a
// row (docs/performance.md, "MariaDB CPU per order"). A server that refuses
// local infile (local_infile=OFF) gets the multi-row INSERT IGNORE, from
// then on; so does a batch with an order id that would need escaping.
func (db *DB) insertOrders(ctx context.Context, tx *sqlx.Tx, rs []flashgate.Reservation, status flashgate.OrderStatus, restocked bool) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	var closed any
	if status != flashgate.OrderUnpaid {
		closed = time.Now().UTC()
	}
	if !db.noLocalInfile.Load() && loadable(rs) {
		n, err := loadOrders(ctx, tx, rs, status, closed, restocked)
		if !refusedLocalInfile(err) {
			return n, err
		}
		// The refusal happens before any row is read and ends only that
		// statement: the transaction goes on with the INSERT.
		db.noLocalInfile.Store(true)
	}
	args := make([]any, 0, len(rs)*8)
	for _, r := range rs {
		args = append(args, r.OrderID, r.ItemID, r.UserID, r.Amount.String(), string(status), r.At.UTC(), closed, restocked)
	}
	q := "INSERT IGNORE INTO seckill_order (order_id, item_id, user_id, amount, status, created_at, closed_at, restocked) VALUES " + valueRows(len(rs), 8)
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("insert orders: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// valueRows returns the VALUES list of a multi-row INSERT: n rows of cols
// placeholders each, "(?,?),(?,?)".
func valueRows(n, cols int) string {
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	b.Grow(n * (len(row) + 1))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// loadSeq names the in-memory files of concurrent loads apart: the
// driver's registry of readers is global.
var loadSeq atomic.Uint64

// loadOrders inserts rs with LOAD DATA LOCAL INFILE ... IGNORE from a
// reader registered with the driver for this statement only ('Reader::'
// names are all the driver serves: the server cannot ask for a file). The
// data carries what differs between rows; status, closed_at and restocked
// are the batch's and go in the SET clause. Fields are tab-separated and
// lines end with a newline, with no escape character (ESCAPED BY the empty
// string): loadable checks that no order id holds either. The data is read
// as ascii, which every byte of it is (loadable): MariaDB then copies the
// order id into its ascii column and reads the numbers and the time without
// converting them from utf8mb4 first (6 % of its instructions a row,
// docs/performance.md).
func loadOrders(ctx context.Context, tx *sqlx.Tx, rs []flashgate.Reservation, status flashgate.OrderStatus, closed any, restocked bool) (int, error) {
	buf := make([]byte, 0, len(rs)*80)
	for _, r := range rs {
		buf = append(buf, r.OrderID...)
		buf = append(buf, '\t')
		buf = strconv.AppendInt(buf, r.ItemID, 10)
		buf = append(buf, '\t')
		buf = strconv.AppendInt(buf, r.UserID, 10)
		buf = append(buf, '\t')
		buf = r.Amount.AppendText(buf)
		buf = append(buf, '\t')
		buf = r.At.UTC().AppendFormat(buf, "2006-01-02 15:04:05.000")
		buf = append(buf, '\n')
	}
	name := "flashgate-orders-" + strconv.FormatUint(loadSeq.Add(1), 10)
	driver.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(buf) })
	defer driver.DeregisterReaderHandler(name)
	res, err := tx.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+`' IGNORE INTO TABLE seckill_order
		CHARACTER SET ascii FIELDS ESCAPED BY '' (order_id, item_id, user_id, amount, created_at)
		SET status = ?, closed_at = ?, restocked = ?`, string(status), closed, restocked)
	if err != nil {
		return 0, fmt.Errorf("load orders: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// loadable reports whether every order id of rs can go into loadOrders'
// unescaped tab-separated ascii lines: printable ASCII holds no tab nor
// newline. flashgate's own ids always can.
func loadable(rs []flashgate.Reservation) bool {
	for _, r := range rs {
		if !ValidOrderID(r.OrderID) {
			return false
		}
	}
	return true
}

// refusedLocalInfile reports whether err is the server (or the driver)
// refusing LOAD DATA LOCAL INFILE as such: MariaDB's and MySQL's errors
// for local infile disabled.
func refusedLocalInfile(err error) bool {
	var me *driver.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1148, // ER_NOT_ALLOWED_COMMAND
		3948, // MySQL 8: ER_CLIENT_LOCAL_FILES_DISABLED
		4166: // MariaDB: ER_LOAD_INFILE_CAPABILITY_DISABLED
		return true
	}
	return false
}

// ValidOrderID reports whether id can be an order row's primary key as it
// is: 1 to 64 printable ASCII characters (order_id is VARCHAR(64) ascii,
// migration 005). flashgate's own ids always are.
func ValidOrderID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// missingOrders returns the reservations of rs that have no row.
func missingOrders(ctx context.Context, tx *sqlx.Tx, rs []flashgate.Reservation) ([]flashgate.Reservation, error) {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.OrderID
	}
	q, args, err := sqlx.In("SELECT order_id FROM seckill_order WHERE order_id IN (?)", ids)
	if err != nil {
		return nil, err
	}
	var have []string
	if err := tx.SelectContext(ctx, &have, q, args...); err != nil {
		return nil, fmt.Errorf("find orders: %w", err)
	}
	seen := make(map[string]bool, len(have))
	for _, id := range have {
		seen[id] = true
	}
	var out []flashgate.Reservation
	for _, r := range rs {
		if !seen[r.OrderID] {
			out = append(out, r)
		}
	}
	return out, nil
}

type orderRow struct {
	OrderID   string       `db:"order_id"`
	ItemID    int64        `db:"item_id"`
	UserID    int64        `db:"user_id"`
	Amount    string       `db:"amount"`
	Status    string       `db:"status"`
	CreatedAt time.Time    `db:"created_at"`
	PaidAt    sql.NullTime `db:"paid_at"`
}

const orderColumns = "order_id, item_id, user_id, amount, status, created_at, paid_at"

func (r orderRow) domain() flashgate.Order {
	amount, _ := flashgate.ParseMoney(r.Amount)
	o := flashgate.Order{ID: r.OrderID, ItemID: r.ItemID, UserID: r.UserID, Amount: amount,
		Status: flashgate.OrderStatus(r.Status), CreatedAt: r.CreatedAt.UTC()}
	if r.PaidAt.Valid {
		t := r.PaidAt.Time.UTC()
		o.PaidAt = &t
	}
	return o
}

// Order returns an order row, or nil when there is none.
func (db *DB) Order(ctx context.Context, id string) (*flashgate.Order, error) {
	var r orderRow
	err := db.GetContext(ctx, &r, "SELECT "+orderColumns+" FROM seckill_order WHERE order_id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read order: %w", err)
	}
	o := r.domain()
	return &o, nil
}

// ExistingOrders returns which of ids have a row.
func (db *DB) ExistingOrders(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 1000)]
		ids = ids[len(chunk):]
		q, args, err := sqlx.In("SELECT order_id FROM seckill_order WHERE order_id IN (?)", chunk)
		if err != nil {
			return nil, err
		}
		var have []string
		if err := db.SelectContext(ctx, &have, q, args...); err != nil {
			return nil, fmt.Errorf("find orders: %w", err)
		}
		for _, id := range have {
			out[id] = true
		}
	}
	return out, nil
}

// OrderCounts are an item's orders by status.
type OrderCounts struct {
	Unpaid, Paid, Cancelled, Refunded int64
}

// Set sets the count of status to n; it reports false for a status that is
// not an order's.
func (c *OrderCounts) Set(status flashgate.OrderStatus, n int64) bool {
	switch status {
	case flashgate.OrderUnpaid:
		c.Unpaid = n
	case flashgate.OrderPaid:
		c.Paid = n
	case flashgate.OrderCancelled:
		c.Cancelled = n
	case flashgate.OrderRefunded:
		c.Refunded = n
	default:
		return false
	}
	return true
}

// ItemOrderCounts returns an item's order rows by status.
func (db *DB) ItemOrderCounts(ctx context.Context, item int64) (OrderCounts, error) {
	return itemOrderCounts(ctx, db, item)
}

// itemOrderCounts reads an item's order rows by status through q, so
// ItemCounts can do it inside its snapshot transaction. It sums the item's
// counter rows (at most 4 statuses × 1+payerSlots slots, see counts.go):
// the same cost at 100 orders or a million, where counting the rows cost
// 0.14 µs a row (docs/performance.md).
func itemOrderCounts(ctx context.Context, q sqlx.QueryerContext, item int64) (OrderCounts, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, "SELECT status, CAST(SUM(n) AS SIGNED) AS n FROM seckill_order_count WHERE item_id = ? GROUP BY status", item); err != nil {
		return OrderCounts{}, fmt.Errorf("count orders of item %d: %w", item, err)
	}
	var c OrderCounts
	for _, r := range rows {
		c.Set(flashgate.OrderStatus(r.Status), r.N)
	}
	return c, nil
}

// Unrestocked is a closed order whose unit is not back in Redis yet.
type Unrestocked struct {
	OrderID string `db:"order_id"`
	ItemID  int64  `db:"item_id"`
	UserID  int64  `db:"user_id"`
	Shards  int    `db:"shards"`
	// Archived is true when the item's Redis state is gone: its unit no
	// longer returns to Redis (contract §11).
	Archived bool `db:"archived"`
}

// Unrestocked returns up to limit cancelled or refunded orders whose unit
// has not been returned to Redis: the queue seckill_restock, which every
// transaction that closes an order fills (the conditions on the order are
// a guard: a unit is never released twice).
func (db *DB) Unrestocked(ctx context.Context, limit int) ([]Unrestocked, error) {
	var out []Unrestocked
	err := db.SelectContext(ctx, &out, `SELECT o.order_id, o.item_id, o.user_id, i.shards, a.archived_at IS NOT NULL AS archived
		FROM seckill_restock r JOIN seckill_order o ON o.order_id = r.order_id
		JOIN seckill_item i ON i.id = o.item_id JOIN seckill_activity a ON a.id = i.activity_id
		WHERE o.restocked = 0 AND o.status IN ('cancelled', 'refunded') LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("find orders to restock: %w", err)
	}
	return out, nil
}

// MarkRestocked records that an order's unit is back in Redis, and takes
// it off the restocker's queue.
func (db *DB) MarkRestocked(ctx context.Context, orderID string) error {
	return db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE seckill_order SET restocked = 1 WHERE order_id = ?", orderID); err != nil {
			return fmt.Errorf("mark restocked: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM seckill_restock WHERE order_id = ?", orderID); err != nil {
			return fmt.Errorf("mark restocked: %w", err)
		}
		return nil
	})
}
