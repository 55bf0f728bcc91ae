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

// Adjustment is a stock adjustment of a published item, logged in
// stock_adjustment until Redis and MySQL agree on it.
type Adjustment struct {
	ID      int64  `db:"id"`
	ItemID  int64  `db:"item_id"`
	Delta   int64  `db:"delta"`
	Applied int64  `db:"applied"`
	State   string `db:"state"`
	Shards  int    `db:"shards"`
}

// BeginAdjust starts a stock adjustment of an item by delta (≠ 0), under its
// activity's row lock (so that it cannot race a publish or a close):
//   - before publish it changes stock and stock_left at once and returns a
//     nil Adjustment (422 if stock would go below 0);
//   - once ended, 409;
//   - while published, an addition raises stock and stock_left now, before
//     any unit reaches Redis (so the MySQL guard never refuses a unit that
//     sold), and a withdrawal changes nothing yet: MySQL's stock goes down
//     by what Redis actually gave up, in FinishAdjust. Either way the
//     adjustment is logged pending, and finished by whoever gets to it.
func (db *DB) BeginAdjust(ctx context.Context, item int64, delta int64, now time.Time) (*Adjustment, int64, error) {
	var adj *Adjustment
	var stock int64
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var r itemRow
		err := tx.GetContext(ctx, &r, "SELECT "+itemColumns+" FROM seckill_item WHERE id = ?", item)
		if errors.Is(err, sql.ErrNoRows) {
			return flashgate.Errorf(flashgate.NotFound, "item %d not found", item)
		}
		if err != nil {
			return fmt.Errorf("adjust stock: %w", err)
		}
		a, err := lockActivity(ctx, tx, r.ActivityID)
		if err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &stock, "SELECT stock FROM seckill_item WHERE id = ? FOR UPDATE", item); err != nil {
			return fmt.Errorf("adjust stock: %w", err)
		}
		switch st := a.StatusAt(now); st {
		case flashgate.StatusEnded, flashgate.StatusArchived:
			return conflict("item %d: its activity is %s; stock can no longer change", item, st)
		case flashgate.StatusDraft, flashgate.StatusScheduled:
			if stock+delta < 0 {
				return unprocessable("delta: stock %d%+d would be below 0", stock, delta)
			}
			if stock+delta > 1_000_000_000 {
				return unprocessable("delta: stock would exceed 1000000000")
			}
			stock += delta
			_, err := tx.ExecContext(ctx, "UPDATE seckill_item SET stock = ?, stock_left = stock_left + ? WHERE id = ?", stock, delta, item)
			if err != nil {
				return fmt.Errorf("adjust stock: %w", err)
			}
			return nil
		}
		adj = &Adjustment{ItemID: item, Delta: delta, State: "pending", Shards: r.Shards}
		if delta > 0 {
			if stock+delta > 1_000_000_000 {
				return unprocessable("delta: stock would exceed 1000000000")
			}
			adj.Applied = delta
			stock += delta
			if _, err := tx.ExecContext(ctx, "UPDATE seckill_item SET stock = stock + ?, stock_left = stock_left + ? WHERE id = ?", delta, delta, item); err != nil {
				return fmt.Errorf("adjust stock: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO stock_adjustment (item_id, delta, applied) VALUES (?, ?, ?)", item, delta, adj.Applied)
		if err != nil {
			return fmt.Errorf("log adjustment: %w", err)
		}
		adj.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return adj, stock, nil
}

// FinishAdjust records that adjustment id reached Redis: for a withdrawal,
// taken units leave stock and stock_left. Only the first call for an
// adjustment changes anything; it returns the item's stock.
func (db *DB) FinishAdjust(ctx context.Context, id int64, taken int64) (int64, error) {
	var stock int64
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var adj Adjustment
		if err := tx.GetContext(ctx, &adj, "SELECT id, item_id, delta, applied, state, 0 AS shards FROM stock_adjustment WHERE id = ? FOR UPDATE", id); err != nil {
			return fmt.Errorf("finish adjustment %d: %w", id, err)
		}
		if adj.State == "pending" {
			if adj.Delta < 0 && taken > 0 {
				if _, err := tx.ExecContext(ctx, "UPDATE seckill_item SET stock = stock - ?, stock_left = stock_left - ? WHERE id = ?", taken, taken, adj.ItemID); err != nil {
					return fmt.Errorf("finish adjustment %d: %w", id, err)
				}
			}
			applied := adj.Applied
			if adj.Delta < 0 {
				applied = -taken
			}
			if _, err := tx.ExecContext(ctx, "UPDATE stock_adjustment SET state = 'done', applied = ?, done_at = ? WHERE id = ?", applied, time.Now().UTC(), id); err != nil {
				return fmt.Errorf("finish adjustment %d: %w", id, err)
			}
		}
		return tx.GetContext(ctx, &stock, "SELECT stock FROM seckill_item WHERE id = ?", adj.ItemID)
	})
	return stock, err
}

// PendingAdjustments returns up to limit adjustments still pending that
// began before cutoff: their process died or failed midway.
func (db *DB) PendingAdjustments(ctx context.Context, cutoff time.Time, limit int) ([]Adjustment, error) {
	var out []Adjustment
	err := db.SelectContext(ctx, &out, `SELECT a.id, a.item_id, a.delta, a.applied, a.state, i.shards
		FROM stock_adjustment a JOIN seckill_item i ON i.id = a.item_id
		WHERE a.state = 'pending' AND a.created_at < ? ORDER BY a.id LIMIT ?`, cutoff.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("pending adjustments: %w", err)
	}
	return out, nil
}

// Counts are an item's order rows by status and how many of a list of
// order ids have a row, read in one snapshot.
type Counts struct {
	OrderCounts
	Stock    int64
	Existing int
}

// ItemCounts reads, in one consistent snapshot (a read-only REPEATABLE READ
// transaction), the item's stock, its order rows by status, and how many of
// outbox have a row: a row committed between two separate reads would be
// counted twice or not at all.
func (db *DB) ItemCounts(ctx context.Context, item int64, outbox []string) (Counts, error) {
	var c Counts
	err := db.inTxOpts(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &c.Stock, "SELECT stock FROM seckill_item WHERE id = ?", item); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return flashgate.Errorf(flashgate.NotFound, "item %d not found", item)
			}
			return fmt.Errorf("read item %d: %w", item, err)
		}
		oc, err := itemOrderCounts(ctx, tx, item)
		if err != nil {
			return err
		}
		c.OrderCounts = oc
		for ids := outbox; len(ids) > 0; {
			chunk := ids[:min(len(ids), 1000)]
			ids = ids[len(chunk):]
			q, args, err := sqlx.In("SELECT COUNT(*) FROM seckill_order WHERE order_id IN (?)", chunk)
			if err != nil {
				return err
			}
			var n int
			if err := tx.GetContext(ctx, &n, q, args...); err != nil {
				return fmt.Errorf("find orders: %w", err)
			}
			c.Existing += n
		}
		return nil
	})
	return c, err
}

// LiveItems returns the items of published activities that are live at now.
func (db *DB) LiveItems(ctx context.Context, now time.Time) ([]flashgate.Item, error) {
	return db.itemsWhere(ctx, "a.published_at IS NOT NULL AND a.archived_at IS NULL AND a.start_at <= ? AND a.end_at > ?", now.UTC(), now.UTC())
}

// OpenItems returns the items of activities published before publishedBefore
// and not ended at now.
func (db *DB) OpenItems(ctx context.Context, now, publishedBefore time.Time) ([]flashgate.Item, error) {
	return db.itemsWhere(ctx, "a.published_at < ? AND a.archived_at IS NULL AND a.end_at > ?", publishedBefore.UTC(), now.UTC())
}

func (db *DB) itemsWhere(ctx context.Context, where string, args ...any) ([]flashgate.Item, error) {
	var rows []struct {
		itemRow
		StartAt time.Time `db:"start_at"`
		EndAt   time.Time `db:"end_at"`
	}
	err := db.SelectContext(ctx, &rows, `SELECT i.id, i.activity_id, i.name, i.price, i.points, i.stock, i.shards, i.require_path, a.start_at, a.end_at
		FROM seckill_item i JOIN seckill_activity a ON a.id = i.activity_id WHERE `+where+` ORDER BY i.id LIMIT 10000`, args...)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	out := make([]flashgate.Item, len(rows))
	for i, r := range rows {
		act := flashgate.Activity{StartAt: r.StartAt.UTC(), EndAt: r.EndAt.UTC()}
		out[i] = r.itemRow.domain(&act)
	}
	return out, nil
}

// ArchiveOne takes one published activity that ended before cutoff and is
// not archived yet, under a row lock that other processes skip, and calls
// drop with it and its items; when drop returns nil the activity is marked
// archived. It returns whether an activity was found. drop returning
// ErrNotSettled leaves the activity for a later pass.
func (db *DB) ArchiveOne(ctx context.Context, cutoff time.Time, skip []int64, drop func(context.Context, *flashgate.Activity) error) (id int64, err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	defer tx.Rollback()
	q, args := "SELECT "+activityColumns+" FROM seckill_activity WHERE published_at IS NOT NULL AND archived_at IS NULL AND end_at <= ?", []any{cutoff.UTC()}
	if len(skip) > 0 {
		var in string
		in, sargs, err := sqlx.In(" AND id NOT IN (?)", skip)
		if err != nil {
			return 0, err
		}
		q += in
		args = append(args, sargs...)
	}
	var r activityRow
	err = tx.GetContext(ctx, &r, q+" ORDER BY end_at LIMIT 1 FOR UPDATE SKIP LOCKED", args...)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	a := r.domain()
	if err := loadItemsTx(ctx, tx, &a); err != nil {
		return 0, err
	}
	var pending int
	if err := tx.GetContext(ctx, &pending, `SELECT COUNT(*) FROM stock_adjustment s JOIN seckill_item i ON i.id = s.item_id
		WHERE i.activity_id = ? AND s.state = 'pending'`, a.ID); err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	if pending > 0 {
		return a.ID, ErrNotSettled
	}
	if err := drop(ctx, &a); err != nil {
		return a.ID, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE seckill_activity SET archived_at = ? WHERE id = ?", time.Now().UTC(), a.ID); err != nil {
		return a.ID, fmt.Errorf("archive: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return a.ID, fmt.Errorf("archive: commit: %w", err)
	}
	return a.ID, nil
}

// ErrNotSettled is returned when an ended activity still has units reserved,
// in transfer or in a pending adjustment, so it cannot be archived yet.
var ErrNotSettled = errors.New("not settled yet")
