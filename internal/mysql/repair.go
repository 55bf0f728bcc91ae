package mysql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/flashgate/flashgate"
)

// ItemSnapshot is what MySQL knows of an item at one moment: the units not
// held by a live order, and the live orders.
type ItemSnapshot struct {
	StockLeft int64
	Shards    int
	// Live maps each user holding an unpaid or paid order to that order.
	Live map[int64]string
	// Rows holds every order id of the item, whatever its status.
	Rows map[string]bool
}

// Snapshot reads an item's stock_left and orders in one consistent read
// (a read-only REPEATABLE READ transaction), for the rewind repair.
func (db *DB) Snapshot(ctx context.Context, item int64) (*ItemSnapshot, error) {
	snap := &ItemSnapshot{Live: map[int64]string{}, Rows: map[string]bool{}}
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowxContext(ctx, "SELECT stock_left, shards FROM seckill_item WHERE id = ?", item).Scan(&snap.StockLeft, &snap.Shards); err != nil {
		return nil, fmt.Errorf("read item %d: %w", item, err)
	}
	rows, err := tx.QueryxContext(ctx, "SELECT order_id, user_id, status FROM seckill_order WHERE item_id = ?", item)
	if err != nil {
		return nil, fmt.Errorf("read orders of item %d: %w", item, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var user int64
		if err := rows.Scan(&id, &user, &status); err != nil {
			return nil, fmt.Errorf("read orders of item %d: %w", item, err)
		}
		snap.Rows[id] = true
		if s := flashgate.OrderStatus(status); s == flashgate.OrderUnpaid || s == flashgate.OrderPaid {
			snap.Live[user] = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read orders of item %d: %w", item, err)
	}
	return snap, nil
}

// TryLock takes the named MySQL lock without waiting, on a connection of its
// own; ok is false when another session holds it. release gives it back.
// MySQL rather than Redis holds it because the Redis it guards may rewind.
func (db *DB) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", name).Scan(&got); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	if got.Int64 != 1 {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", name)
		conn.Close()
	}, true, nil
}
