package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate"
)

// The expiry sweep finds expired unpaid orders without an index of its own
// on seckill_order (migration 007 dropped idx_order_sweep, which every
// insert paid for):
//
//   - flashgate's order ids begin with 10 Crockford base32 characters that
//     hold the creation millisecond, so the primary key is in creation
//     order: the orders created before T are those with order_id <
//     flashgate.OrderIDsBefore(T). The sweep walks the primary key from
//     the mark W (the one row of seckill_sweep_mark) up to
//     OrderIDsBefore(cutoff), each row read once, and advances W. Every order with a "keyed" id (keyed: its
//     first characters are its created_at exactly) below W has been seen by
//     the sweep, or was stored closed at insert.
//   - a reservation that reaches MySQL with a keyed id below W (late: a
//     Kafka backlog, the relay, a worker down) would never be walked:
//     WriteReservations reads W with a shared lock and stores such
//     reservations cancelled, as expired, at once. The sweep holds the
//     mark row exclusively from its read of W to its commit, so W cannot
//     move between an insert's check and its commit.
//   - the orders the walk cannot settle at once, and those whose ids are
//     not keyed (tests and other producers may use any printable id; a
//     keyed-looking id whose time is not its created_at), are listed in
//     seckill_sweep_pending with their created_at, and swept by created_at
//     from there: a row another transaction holds (a payment in progress,
//     skipped as before), an order with an Alipay trade (the caller closes
//     the trade, then cancels it or finds it paid), an order with an id
//     that is not keyed (WriteReservations lists it on insert). A pending
//     row goes when its order is no longer unpaid.
//
// Lock order: the mark row, then order rows, then item rows. Every
// transaction that takes the mark takes it first.

// sweepMarkID is the primary key of seckill_sweep_mark's one row.
const sweepMarkID = 1

// sweepWalkRows is how many rows one sweep batch reads from the primary
// key at most, per expired order it may take (its limit): the walk reads
// every order, paid or not, and must outpace the sale's order rate with
// the caller's batches per tick.
const sweepWalkRows = 20

// keyed reports whether an order with this id and creation time is found by
// the walk: its id is flashgate's and begins with created_at's millisecond.
// created_at is stored to the millisecond, so at and the row's created_at
// give the same answer.
func keyed(id string, createdAt time.Time) bool {
	ms, ok := flashgate.OrderIDMilli(id)
	return ok && ms == createdAt.UnixMilli()
}

// successor returns the least string above id that a keyed id can be (keyed
// ids are [0-9A-Z-]): id followed by "!", the lowest printable character
// above the space, which ascii_bin, a PAD SPACE collation, would ignore at
// the end.
func successor(id string) string { return id + "!" }

// sweepMark reads the mark with lock ("FOR UPDATE" or "LOCK IN SHARE
// MODE"); a locking read sees the latest committed mark.
func sweepMark(ctx context.Context, tx *sqlx.Tx, lock string) (string, error) {
	var w string
	err := tx.GetContext(ctx, &w, "SELECT mark FROM seckill_sweep_mark WHERE id = ? "+lock, sweepMarkID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errors.New("read sweep mark: seckill_sweep_mark has no row (migration 007 not applied?)")
	}
	if err != nil {
		return "", fmt.Errorf("read sweep mark: %w", err)
	}
	return w, nil
}

// queueRestock lists in seckill_restock those of ids whose order is closed
// (cancelled or refunded) with its unit not back in Redis: the restocker's
// queue (Unrestocked). Every transaction that leaves an order so calls it.
func queueRestock(ctx context.Context, tx *sqlx.Tx, ids []string) error {
	// FORCE INDEX: by primary key, one row per id. A scan (the optimizer's
	// pick for a small table) would lock every row it reads, in
	// WriteReservations' REPEATABLE READ, and wait for other writers' new
	// rows while holding the item's row they wait for.
	return execIDs(ctx, tx, "queue restock", `INSERT IGNORE INTO seckill_restock (order_id)
		SELECT order_id FROM seckill_order FORCE INDEX (PRIMARY)
		WHERE order_id IN (?) AND status IN ('cancelled', 'refunded') AND restocked = 0`, ids)
}

// execIDs runs q, whose one bind is "IN (?)", with ids there (nothing when
// ids is empty); what names the statement in its error.
func execIDs(ctx context.Context, tx *sqlx.Tx, what, q string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	q, args, err := sqlx.In(q, ids)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// queueRestockOne is queueRestock for an order the caller has just closed
// (its row locked): no need to read it again.
func queueRestockOne(ctx context.Context, tx *sqlx.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO seckill_restock (order_id) VALUES (?)", id); err != nil {
		return fmt.Errorf("queue restock: %w", err)
	}
	return nil
}

// pendOrders lists in seckill_sweep_pending those of ids whose order is
// unpaid with restocked 0, with the row's created_at: WriteReservations'
// orders whose ids are not keyed.
func pendOrders(ctx context.Context, tx *sqlx.Tx, ids []string) error {
	return execIDs(ctx, tx, "list orders for the sweep", `INSERT IGNORE INTO seckill_sweep_pending (order_id, created_at)
		SELECT order_id, created_at FROM seckill_order FORCE INDEX (PRIMARY)
		WHERE order_id IN (?) AND status = 'unpaid' AND restocked = 0`, ids) // FORCE INDEX: see queueRestock
}

// pendRows lists rows the walk read (a consistent read: their values are
// the latest committed) in seckill_sweep_pending.
func pendRows(ctx context.Context, tx *sqlx.Tx, rows []sweepRow) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(rows))
	for _, r := range rows {
		args = append(args, r.OrderID, r.CreatedAt.UTC())
	}
	q := "INSERT IGNORE INTO seckill_sweep_pending (order_id, created_at) VALUES " + valueRows(len(rows), 2)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("list orders for the sweep: %w", err)
	}
	return nil
}

// unpend drops ids from seckill_sweep_pending.
func unpend(ctx context.Context, tx *sqlx.Tx, ids []string) error {
	return execIDs(ctx, tx, "unlist swept orders", "DELETE FROM seckill_sweep_pending WHERE order_id IN (?)", ids)
}
