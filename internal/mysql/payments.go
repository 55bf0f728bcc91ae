package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate"
)

// Payment channels, the payment_info.channel values.
const (
	ChannelAlipay = "alipay"
	ChannelPoints = "points"
)

// Statuses of payment_info rows. The channel's own trade statuses, plus
// REFUNDED once the money went back and REFUND_NEEDED for money taken for an
// order that was already closed or paid another way.
const (
	PayWaiting      = "WAIT_BUYER_PAY"
	PaySuccess      = "TRADE_SUCCESS"
	PayFinished     = "TRADE_FINISHED"
	PayClosed       = "TRADE_CLOSED"
	PayRefunded     = "REFUNDED"
	PayRefundNeeded = "REFUND_NEEDED"
)

// PaymentInfo is a row of payment_info.
type PaymentInfo struct {
	OrderID         string          `db:"order_id"`
	Channel         string          `db:"channel"`
	TradeNo         sql.NullString  `db:"trade_no"`
	Amount          flashgate.Money `db:"-"`
	AmountText      string          `db:"amount"`
	Status          string          `db:"status"`
	CallbackTime    sql.NullTime    `db:"callback_time"`
	CallbackContent sql.NullString  `db:"callback_content"`
}

const paymentColumns = "order_id, channel, trade_no, amount, status, callback_time, callback_content"

func (p *PaymentInfo) fill() {
	p.Amount, _ = flashgate.ParseMoney(p.AmountText)
}

// Payments returns the payment_info rows of an order.
func (db *DB) Payments(ctx context.Context, orderID string) ([]PaymentInfo, error) {
	var out []PaymentInfo
	if err := db.SelectContext(ctx, &out, "SELECT "+paymentColumns+" FROM payment_info WHERE order_id = ? ORDER BY id", orderID); err != nil {
		return nil, fmt.Errorf("read payments of %s: %w", orderID, err)
	}
	for i := range out {
		out[i].fill()
	}
	return out, nil
}

// Payment returns the payment_info row of an order and channel, or nil.
func (db *DB) Payment(ctx context.Context, orderID, channel string) (*PaymentInfo, error) {
	return payment(ctx, db, orderID, channel, "")
}

func payment(ctx context.Context, q sqlx.QueryerContext, orderID, channel, suffix string) (*PaymentInfo, error) {
	var p PaymentInfo
	err := sqlx.GetContext(ctx, q, &p, "SELECT "+paymentColumns+" FROM payment_info WHERE order_id = ? AND channel = ?"+suffix, orderID, channel)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s payment of %s: %w", channel, orderID, err)
	}
	p.fill()
	return &p, nil
}

// PaidChannel returns the payment that paid an order, or nil.
func (db *DB) PaidChannel(ctx context.Context, orderID string) (*PaymentInfo, error) {
	var p PaymentInfo
	err := db.GetContext(ctx, &p, "SELECT "+paymentColumns+" FROM payment_info WHERE order_id = ? AND status IN (?, ?) ORDER BY id LIMIT 1",
		orderID, PaySuccess, PayFinished)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read payment of %s: %w", orderID, err)
	}
	p.fill()
	return &p, nil
}

// inTxRC runs fn in a READ COMMITTED transaction: payments lock the rows
// they read by primary key (or skip locked ones), and must not take the gap
// locks of REPEATABLE READ that would stall the workers' inserts.
func (db *DB) inTxRC(ctx context.Context, fn func(*sqlx.Tx) error) error {
	return db.inTxOpts(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, fn)
}

// lockOrder reads an order row FOR UPDATE; nil when there is none.
func lockOrder(ctx context.Context, tx *sqlx.Tx, id string) (*flashgate.Order, error) {
	var r orderRow
	err := tx.GetContext(ctx, &r, "SELECT "+orderColumns+" FROM seckill_order WHERE order_id = ? FOR UPDATE", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock order: %w", err)
	}
	o := r.domain()
	return &o, nil
}

// lockPayable locks user's order and answers conflict unless it is unpaid
// and was created after notBefore (an order about to expire is not paid for
// any more: the sweep may be closing it).
func lockPayable(ctx context.Context, tx *sqlx.Tx, id string, user int64, notBefore time.Time) (*flashgate.Order, error) {
	o, err := lockOwnOrder(ctx, tx, id, user)
	if err != nil {
		return nil, err
	}
	if o.Status != flashgate.OrderUnpaid {
		return nil, notUnpaid(o)
	}
	if !o.CreatedAt.After(notBefore) {
		return nil, flashgate.Errorf(flashgate.Conflict, "order %s has expired", o.ID)
	}
	return o, nil
}

// lockOwnOrder is lockOrder for an order that must belong to user.
func lockOwnOrder(ctx context.Context, tx *sqlx.Tx, id string, user int64) (*flashgate.Order, error) {
	o, err := lockOrder(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if o == nil || o.UserID != user {
		return nil, flashgate.Errorf(flashgate.NotFound, "order not found")
	}
	return o, nil
}

func notUnpaid(o *flashgate.Order) error {
	return flashgate.Errorf(flashgate.Conflict, "order %s is %s, not unpaid", o.ID, o.Status)
}

// setStatus moves a locked order to status; closing statuses stamp
// closed_at, give the unit back to stock_left and queue the order for the
// restocker. The item's order counts move with it (counts.go): a payment in
// its own slot, a closing in slot 0 once giveBack holds the item's row.
func setStatus(ctx context.Context, tx *sqlx.Tx, o *flashgate.Order, status flashgate.OrderStatus, at time.Time) error {
	var res sql.Result
	var err error
	switch status {
	case flashgate.OrderPaid:
		res, err = tx.ExecContext(ctx, "UPDATE seckill_order SET status = ?, paid_at = ? WHERE order_id = ? AND status = ?",
			string(status), at.UTC(), o.ID, string(o.Status))
		if err == nil {
			err = changedOne(res)
		}
		if err == nil {
			err = addCounts(ctx, tx, moveCount(o.ItemID, o.Status, status, paySlot(o.ID), 1))
		}
	default:
		res, err = tx.ExecContext(ctx, "UPDATE seckill_order SET status = ?, closed_at = ? WHERE order_id = ? AND status = ?",
			string(status), at.UTC(), o.ID, string(o.Status))
		if err == nil {
			err = changedOne(res)
		}
		if err == nil {
			err = giveBack(ctx, tx, o.ItemID, 1)
		}
		if err == nil {
			err = addCounts(ctx, tx, moveCount(o.ItemID, o.Status, status, 0, 1))
		}
		if err == nil {
			err = queueRestockOne(ctx, tx, o.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("order %s to %s: %w", o.ID, status, err)
	}
	o.Status = status
	if status == flashgate.OrderPaid {
		t := at.UTC()
		o.PaidAt = &t
	}
	return nil
}

// changedOne checks that an update of a locked order changed it: the
// counts are moved only for a status that did change.
func changedOne(res sql.Result) error {
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%d rows changed (%v), want 1", n, err)
	}
	return nil
}

// giveBack returns units of closed orders to an item's MySQL stock.
func giveBack(ctx context.Context, tx *sqlx.Tx, item int64, n int) error {
	if _, err := tx.ExecContext(ctx, "UPDATE seckill_item SET stock_left = stock_left + ? WHERE id = ?", n, item); err != nil {
		return fmt.Errorf("give %d units back to item %d: %w", n, item, err)
	}
	return nil
}

// OpenAlipay records that the Alipay trade of an unpaid order is handed out
// and returns the order. It answers conflict unless the order is unpaid and
// was created after notBefore (an order about to expire is not paid for any
// more: the sweep may be closing it). Holding the order row while the
// payment_info row is written orders it against the sweep: a sweep that saw
// no trade has cancelled the order before this runs.
func (db *DB) OpenAlipay(ctx context.Context, orderID string, user int64, notBefore time.Time) (*flashgate.Order, error) {
	var out *flashgate.Order
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		o, err := lockPayable(ctx, tx, orderID, user, notBefore)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_info (order_id, channel, amount, status)
			VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`, o.ID, ChannelAlipay, o.Amount.String(), PayWaiting); err != nil {
			return fmt.Errorf("record payment: %w", err)
		}
		out = o
		return nil
	})
	return out, err
}

// Outcome is what a channel's report did to an order.
type Outcome string

// Outcomes of ApplyPayment, as recorded in payment_notify.outcome.
const (
	OutcomePaid         Outcome = "paid"          // the order turned paid
	OutcomeReplay       Outcome = "replay"        // already applied: nothing changed
	OutcomeRefundNeeded Outcome = "refund_needed" // money taken for a closed or otherwise paid order
	OutcomeRecorded     Outcome = "recorded"      // not a payment: recorded only
)

// ChannelReport is a genuine report of a channel about an order's trade: an
// asynchronous notify, or a trade query.
type ChannelReport struct {
	OrderID     string
	Channel     string
	NotifyID    string // notify_id, or "query"
	TradeNo     string
	TradeStatus string
	Amount      flashgate.Money // total_amount as reported
	Paid        bool            // the buyer paid (and this is not a refund's report)
	Content     string          // raw, kept as is
	At          time.Time
}

// ApplyPayment applies a genuine channel report to its order in one
// transaction and records it in payment_notify. A payment turns an unpaid
// order paid once, through a conditional update of the locked row; a
// payment for an order that is closed, or paid through another channel, is
// recorded and its payment_info flagged REFUND_NEEDED, the order unchanged.
// An unknown order answers not_found and an amount that is not the order's
// invalid; both change nothing.
func (db *DB) ApplyPayment(ctx context.Context, r ChannelReport) (Outcome, *flashgate.Order, error) {
	var outcome Outcome
	var out *flashgate.Order
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		o, err := lockOrder(ctx, tx, r.OrderID)
		if err != nil {
			return err
		}
		if o == nil {
			return flashgate.Errorf(flashgate.NotFound, "order %s not found", r.OrderID)
		}
		if r.Amount != o.Amount {
			return flashgate.Errorf(flashgate.Invalid, "total_amount %s is not the amount %s of order %s", r.Amount, o.Amount, o.ID)
		}
		p, err := payment(ctx, tx, o.ID, r.Channel, " FOR UPDATE")
		if err != nil {
			return err
		}
		outcome = OutcomeRecorded
		if r.Paid {
			switch {
			case p != nil && (p.Status == PaySuccess || p.Status == PayFinished || p.Status == PayRefunded || p.Status == PayRefundNeeded):
				outcome = OutcomeReplay
			case o.Status == flashgate.OrderUnpaid:
				if err := setStatus(ctx, tx, o, flashgate.OrderPaid, r.At); err != nil {
					return err
				}
				outcome = OutcomePaid
			default:
				outcome = OutcomeRefundNeeded
			}
		}
		if outcome == OutcomePaid || outcome == OutcomeRefundNeeded {
			status := r.TradeStatus
			if outcome == OutcomeRefundNeeded {
				status = PayRefundNeeded
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO payment_info
				(order_id, channel, trade_no, amount, status, callback_time, callback_content) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON DUPLICATE KEY UPDATE trade_no = VALUES(trade_no), status = VALUES(status),
				callback_time = VALUES(callback_time), callback_content = VALUES(callback_content)`,
				o.ID, r.Channel, r.TradeNo, o.Amount.String(), status, r.At.UTC(), r.Content); err != nil {
				return fmt.Errorf("record payment: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_notify
			(order_id, channel, notify_id, trade_status, outcome, content, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.ID, r.Channel, r.NotifyID, r.TradeStatus, string(outcome), r.Content, r.At.UTC()); err != nil {
			return fmt.Errorf("record notify: %w", err)
		}
		out = o
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return outcome, out, nil
}

// CancelUnpaid cancels an order if it is still unpaid: the status change,
// the unit back in stock_left and its open Alipay trade marked closed, in
// one transaction. It reports whether this call cancelled it, and the order
// as it is now (nil when unknown).
func (db *DB) CancelUnpaid(ctx context.Context, orderID string, at time.Time) (bool, *flashgate.Order, error) {
	return db.transition(ctx, orderID, flashgate.OrderUnpaid, flashgate.OrderCancelled, at, func(tx *sqlx.Tx, o *flashgate.Order) error {
		if _, err := tx.ExecContext(ctx, "UPDATE payment_info SET status = ? WHERE order_id = ? AND status = ?", PayClosed, o.ID, PayWaiting); err != nil {
			return fmt.Errorf("close payment: %w", err)
		}
		return nil
	})
}

// transition moves an order from status from to status to in one
// transaction with the order row locked, running also in it (setStatus
// gives the unit back when the order closes). It reports whether this call
// changed the order, and the order as it is now (nil when unknown).
func (db *DB) transition(ctx context.Context, orderID string, from, to flashgate.OrderStatus, at time.Time, also func(*sqlx.Tx, *flashgate.Order) error) (bool, *flashgate.Order, error) {
	var done bool
	var out *flashgate.Order
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		o, err := lockOrder(ctx, tx, orderID)
		if err != nil || o == nil {
			return err
		}
		out = o
		if o.Status != from {
			return nil
		}
		if err := setStatus(ctx, tx, o, to, at); err != nil {
			return err
		}
		if err := also(tx, o); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done, out, err
}

// TradeClosed records that the channel closed the open trade of an order.
func (db *DB) TradeClosed(ctx context.Context, orderID, channel string) error {
	if _, err := db.ExecContext(ctx, "UPDATE payment_info SET status = ? WHERE order_id = ? AND channel = ? AND status = ?",
		PayClosed, orderID, channel, PayWaiting); err != nil {
		return fmt.Errorf("close payment: %w", err)
	}
	return nil
}

// SweepCursor is where a sweep of expired orders goes on from: the place in
// seckill_sweep_pending, by created_at then order id (the walk of the
// primary key goes on from the mark, sweep.go).
type SweepCursor struct {
	CreatedAt time.Time
	OrderID   string
}

// Sweep is what one batch of SweepExpired did.
type Sweep struct {
	// Cancelled are the orders this batch cancelled.
	Cancelled []flashgate.Order
	// Open are expired orders with an Alipay trade: the caller closes the
	// trade first, then cancels them with CancelUnpaid (or finds them paid).
	Open []flashgate.Order
	// Seen counts the orders the batch took, and is at least the limit
	// while the walk has rows left: fewer than the limit means the sweep
	// is done. Next is where the next batch starts.
	Seen int
	Next SweepCursor
}

// sweepRow is an order row as the sweep reads it.
type sweepRow struct {
	orderRow
	Restocked bool `db:"restocked"`
}

func (r sweepRow) live() bool { return r.Status == string(flashgate.OrderUnpaid) && !r.Restocked }

// SweepExpired takes up to limit unpaid orders created before cutoff, from
// the orders listed as pending (after the cursor) and from the walk of the
// primary key (from the mark, see sweep.go), locks them skipping rows
// other transactions hold (a payment in progress is left alone, and
// listed as pending to be seen again), and cancels those without an Alipay
// trade in the same transaction, their units back in stock_left and their
// orders queued for the restocker. Sweeps run one at a time: each holds
// the mark row from start to commit, and so do the workers' inserts,
// shared.
func (db *DB) SweepExpired(ctx context.Context, cutoff time.Time, after SweepCursor, limit int, at time.Time) (Sweep, error) {
	var sw Sweep
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		sw = Sweep{Next: after}
		mark, err := sweepMark(ctx, tx, "FOR UPDATE")
		if err != nil {
			return err
		}

		// The pending orders, by created_at.
		var pending []struct {
			OrderID   string    `db:"order_id"`
			CreatedAt time.Time `db:"created_at"`
		}
		if err := tx.SelectContext(ctx, &pending, `SELECT order_id, created_at FROM seckill_sweep_pending
			WHERE created_at < ? AND (created_at > ? OR (created_at = ? AND order_id > ?))
			ORDER BY created_at, order_id LIMIT ?`,
			cutoff.UTC(), after.CreatedAt.UTC(), after.CreatedAt.UTC(), after.OrderID, limit); err != nil {
			return fmt.Errorf("find pending expired orders: %w", err)
		}
		if len(pending) > 0 {
			last := pending[len(pending)-1]
			sw.Next = SweepCursor{CreatedAt: last.CreatedAt, OrderID: last.OrderID}
		}

		// The walk: every row from the mark up to the cutoff's prefix, a
		// consistent read without locks; the unpaid ones are taken below.
		end := flashgate.OrderIDsBefore(cutoff)
		next := mark
		inPending := make(map[string]bool, len(pending))
		for _, p := range pending {
			inPending[p.OrderID] = true
		}
		var walked, toPend []sweepRow
		if mark < end {
			var rows []sweepRow
			walk := limit * sweepWalkRows
			// Only what decides; the orders taken are read again locked.
			if err := tx.SelectContext(ctx, &rows, `SELECT order_id, status, created_at, restocked FROM seckill_order
				WHERE order_id >= ? AND order_id < ? ORDER BY order_id LIMIT ?`, mark, end, walk); err != nil {
				return fmt.Errorf("walk orders: %w", err)
			}
			next = end
			if len(rows) == walk {
				next = successor(rows[len(rows)-1].OrderID)
			}
			for _, r := range rows {
				if !r.live() || inPending[r.OrderID] { // taken above
					continue
				}
				if !keyed(r.OrderID, r.CreatedAt) {
					// Not in creation order: swept by created_at (an
					// insert lists these; this catches older rows).
					toPend = append(toPend, r)
					continue
				}
				walked = append(walked, r)
				if len(walked) == limit {
					next = successor(r.OrderID) // the rest in the next batch
					break
				}
			}
		}
		sw.Seen = len(pending) + len(walked)
		if next < end && sw.Seen < limit {
			sw.Seen = limit // rows left to walk
		}

		ids := make([]string, 0, len(pending)+len(walked))
		for _, p := range pending {
			ids = append(ids, p.OrderID)
		}
		for _, r := range walked {
			ids = append(ids, r.OrderID)
		}
		locked := map[string]sweepRow{}
		if len(ids) > 0 {
			// FORCE INDEX: by key, never a scan that would lock rows it
			// does not take (see queueRestock).
			q, args, err := sqlx.In("SELECT "+orderColumns+", restocked FROM seckill_order FORCE INDEX (PRIMARY) WHERE order_id IN (?) FOR UPDATE SKIP LOCKED", ids)
			if err != nil {
				return err
			}
			var rows []sweepRow
			if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
				return fmt.Errorf("lock expired orders: %w", err)
			}
			for _, r := range rows {
				locked[r.OrderID] = r
			}
		}
		// What to expire, and from where; what the pending list loses.
		var expired []sweepRow
		fromPending := map[string]bool{}
		var settled []string
		for _, p := range pending {
			r, ok := locked[p.OrderID]
			switch {
			case !ok: // held by another transaction: next time
			case !r.live():
				settled = append(settled, p.OrderID)
			case r.CreatedAt.Before(cutoff):
				expired = append(expired, r)
				fromPending[r.OrderID] = true
			}
		}
		for _, w := range walked {
			r, ok := locked[w.OrderID]
			switch {
			case !ok: // held by another transaction: to be seen again
				toPend = append(toPend, w)
			case !r.live(): // paid or closed since the walk read it
			default:
				expired = append(expired, r)
			}
		}

		open, err := alipayTrades(ctx, tx, expired)
		if err != nil {
			return err
		}
		var cancel []string
		perItem := map[int64]int{}
		for _, r := range expired {
			o := r.domain()
			if open[o.ID] {
				sw.Open = append(sw.Open, o)
				if !fromPending[o.ID] {
					toPend = append(toPend, r) // seen again until it is settled
				}
				continue
			}
			o.Status = flashgate.OrderCancelled
			sw.Cancelled = append(sw.Cancelled, o)
			cancel = append(cancel, o.ID)
			if fromPending[o.ID] {
				settled = append(settled, o.ID)
			}
			perItem[o.ItemID]++
		}
		if err := pendRows(ctx, tx, toPend); err != nil {
			return err
		}
		if err := unpend(ctx, tx, settled); err != nil {
			return err
		}
		if next > mark {
			if _, err := tx.ExecContext(ctx, "UPDATE seckill_sweep_mark SET mark = ? WHERE id = ?", next, sweepMarkID); err != nil {
				return fmt.Errorf("advance sweep mark: %w", err)
			}
		}
		if len(cancel) == 0 {
			return nil
		}
		q, args, err := sqlx.In("UPDATE seckill_order SET status = 'cancelled', closed_at = ? WHERE status = 'unpaid' AND order_id IN (?)", at.UTC(), cancel)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("cancel expired orders: %w", err)
		}
		if n, _ := res.RowsAffected(); int(n) != len(cancel) {
			return fmt.Errorf("cancel expired orders: %d of %d locked rows changed", n, len(cancel))
		}
		if err := queueRestock(ctx, tx, cancel); err != nil {
			return err
		}
		items := make([]int64, 0, len(perItem))
		for it := range perItem {
			items = append(items, it)
		}
		sort.Slice(items, func(i, j int) bool { return items[i] < items[j] }) // lock order
		var counts []countDelta
		for _, it := range items {
			if err := giveBack(ctx, tx, it, perItem[it]); err != nil {
				return err
			}
			counts = append(counts, moveCount(it, flashgate.OrderUnpaid, flashgate.OrderCancelled, 0, int64(perItem[it]))...)
		}
		// Slot 0: giveBack holds every item's row by now.
		return addCounts(ctx, tx, counts)
	})
	if err != nil {
		return Sweep{Next: after}, err
	}
	return sw, nil
}

// alipayTrades returns which of rows have an Alipay payment_info row.
func alipayTrades(ctx context.Context, tx *sqlx.Tx, rows []sweepRow) (map[string]bool, error) {
	open := map[string]bool{}
	if len(rows) == 0 {
		return open, nil
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.OrderID
	}
	q, args, err := sqlx.In("SELECT order_id FROM payment_info WHERE channel = ? AND order_id IN (?)", ChannelAlipay, ids)
	if err != nil {
		return nil, err
	}
	var traded []string
	if err := tx.SelectContext(ctx, &traded, q, args...); err != nil {
		return nil, fmt.Errorf("find trades of expired orders: %w", err)
	}
	for _, id := range traded {
		open[id] = true
	}
	return open, nil
}

// PayWithPoints pays an unpaid order of user with points in one
// transaction: the balance taken (never below zero), a points_log row unique
// per (order, "pay"), the order turned paid and the payment recorded. It
// answers conflict for too few points, an order that is not unpaid, or one
// created before notBefore (expired).
func (db *DB) PayWithPoints(ctx context.Context, orderID string, user, points int64, notBefore, at time.Time) (*flashgate.Order, error) {
	var out *flashgate.Order
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		o, err := lockPayable(ctx, tx, orderID, user, notBefore)
		if err != nil {
			return err
		}
		balance, err := movePoints(ctx, tx, user, -points)
		if err != nil {
			return err
		}
		logID, err := logPoints(ctx, tx, user, &o.ID, "pay", -points, balance)
		if err != nil {
			return err
		}
		if err := setStatus(ctx, tx, o, flashgate.OrderPaid, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payment_info
			(order_id, channel, trade_no, amount, status, callback_time) VALUES (?, ?, ?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE trade_no = VALUES(trade_no), status = VALUES(status), callback_time = VALUES(callback_time)`,
			o.ID, ChannelPoints, fmt.Sprintf("P%d", logID), o.Amount.String(), PaySuccess, at.UTC()); err != nil {
			return fmt.Errorf("record payment: %w", err)
		}
		out = o
		return nil
	})
	return out, err
}

// RefundPoints refunds an order of user paid with points in one
// transaction: the points back (a points_log row unique per (order,
// "refund")), the order turned refunded, its unit back in stock_left, the
// refund logged. An order already refunded with points is answered as is.
func (db *DB) RefundPoints(ctx context.Context, orderID string, user int64, outRequestNo string, at time.Time) (*flashgate.Order, error) {
	var out *flashgate.Order
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		o, err := lockOwnOrder(ctx, tx, orderID, user)
		if err != nil {
			return err
		}
		p, err := payment(ctx, tx, o.ID, ChannelPoints, " FOR UPDATE")
		if err != nil {
			return err
		}
		if o.Status == flashgate.OrderRefunded && p != nil && p.Status == PayRefunded {
			out = o
			return nil
		}
		if o.Status != flashgate.OrderPaid {
			return flashgate.Errorf(flashgate.Conflict, "order %s is %s, not paid", o.ID, o.Status)
		}
		if p == nil || p.Status != PaySuccess {
			return flashgate.Errorf(flashgate.Conflict, "order %s was not paid with points", o.ID)
		}
		var paid int64
		if err := tx.GetContext(ctx, &paid, "SELECT -delta FROM points_log WHERE out_trade_no = ? AND type = 'pay'", o.ID); err != nil {
			return fmt.Errorf("read points payment of %s: %w", o.ID, err)
		}
		balance, err := movePoints(ctx, tx, user, paid)
		if err != nil {
			return err
		}
		if _, err := logPoints(ctx, tx, user, &o.ID, "refund", paid, balance); err != nil {
			return err
		}
		if err := setStatus(ctx, tx, o, flashgate.OrderRefunded, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE payment_info SET status = ? WHERE order_id = ? AND channel = ?", PayRefunded, o.ID, ChannelPoints); err != nil {
			return fmt.Errorf("record refund: %w", err)
		}
		if err := logRefund(ctx, tx, o, ChannelPoints, outRequestNo, &paid, p.TradeNo.String, at); err != nil {
			return err
		}
		out = o
		return nil
	})
	return out, err
}

// MarkRefunded records that a channel refunded a paid order: the order
// turned refunded, its unit back in stock_left, payment_info REFUNDED and the
// refund logged, in one transaction. It reports whether this call changed
// the order, and the order as it is now.
func (db *DB) MarkRefunded(ctx context.Context, orderID, channel, outRequestNo, tradeNo string, at time.Time) (bool, *flashgate.Order, error) {
	return db.transition(ctx, orderID, flashgate.OrderPaid, flashgate.OrderRefunded, at, func(tx *sqlx.Tx, o *flashgate.Order) error {
		if _, err := tx.ExecContext(ctx, "UPDATE payment_info SET status = ? WHERE order_id = ? AND channel = ?", PayRefunded, o.ID, channel); err != nil {
			return fmt.Errorf("record refund: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE refund_request SET state = ? WHERE out_request_no = ?", RefundDone, outRequestNo); err != nil {
			return fmt.Errorf("record refund: %w", err)
		}
		return logRefund(ctx, tx, o, channel, outRequestNo, nil, tradeNo, at)
	})
}

// RefundsNeeded returns up to limit payments flagged REFUND_NEEDED.
func (db *DB) RefundsNeeded(ctx context.Context, channel string, limit int) ([]PaymentInfo, error) {
	var out []PaymentInfo
	if err := db.SelectContext(ctx, &out, "SELECT "+paymentColumns+" FROM payment_info WHERE status = ? AND channel = ? ORDER BY id LIMIT ?",
		PayRefundNeeded, channel, limit); err != nil {
		return nil, fmt.Errorf("find payments to refund: %w", err)
	}
	for i := range out {
		out[i].fill()
	}
	return out, nil
}

// MarkPaymentRefunded records the refund of a payment flagged REFUND_NEEDED;
// the order is not touched (it is closed, or paid another way).
func (db *DB) MarkPaymentRefunded(ctx context.Context, p *PaymentInfo, outRequestNo string, at time.Time) error {
	return db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE payment_info SET status = ? WHERE order_id = ? AND channel = ? AND status = ?",
			PayRefunded, p.OrderID, p.Channel, PayRefundNeeded)
		if err != nil {
			return fmt.Errorf("record refund: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		o := &flashgate.Order{ID: p.OrderID, Amount: p.Amount}
		return logRefund(ctx, tx, o, p.Channel, outRequestNo, nil, p.TradeNo.String, at)
	})
}

// States of a refund_request.
const (
	RefundPending   = "pending"
	RefundDone      = "done"
	RefundAbandoned = "abandoned"
)

// RefundRequest is a refund asked of a channel (table refund_request).
type RefundRequest struct {
	OutRequestNo string    `db:"out_request_no"`
	OrderID      string    `db:"order_id"`
	Channel      string    `db:"channel"`
	RequestedAt  time.Time `db:"requested_at"`
}

// RequestRefund records, before the channel is called, that a refund of
// orderID is asked under outRequestNo: if its confirmation cannot be
// recorded, the repair job finds it pending.
func (db *DB) RequestRefund(ctx context.Context, orderID, channel, outRequestNo string, at time.Time) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO refund_request (out_request_no, order_id, channel, state, requested_at)
		VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE state = VALUES(state), requested_at = VALUES(requested_at)`,
		outRequestNo, orderID, channel, RefundPending, at.UTC()); err != nil {
		return fmt.Errorf("record refund request: %w", err)
	}
	return nil
}

// PendingRefunds returns up to limit refund requests of channel still
// pending that were made before cutoff.
func (db *DB) PendingRefunds(ctx context.Context, channel string, cutoff time.Time, limit int) ([]RefundRequest, error) {
	var out []RefundRequest
	if err := db.SelectContext(ctx, &out, `SELECT out_request_no, order_id, channel, requested_at FROM refund_request
		WHERE state = ? AND requested_at < ? AND channel = ? ORDER BY requested_at LIMIT ?`,
		RefundPending, cutoff.UTC(), channel, limit); err != nil {
		return nil, fmt.Errorf("find pending refunds: %w", err)
	}
	return out, nil
}

// SetRefundState closes a refund request: done or abandoned.
func (db *DB) SetRefundState(ctx context.Context, outRequestNo, state string) error {
	if _, err := db.ExecContext(ctx, "UPDATE refund_request SET state = ? WHERE out_request_no = ? AND state = ?", state, outRequestNo, RefundPending); err != nil {
		return fmt.Errorf("close refund request: %w", err)
	}
	return nil
}

func logRefund(ctx context.Context, tx *sqlx.Tx, o *flashgate.Order, channel, outRequestNo string, points *int64, tradeNo string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO refund_log
		(order_id, channel, out_request_no, amount, points, trade_no, refunded_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		o.ID, channel, outRequestNo, o.Amount.String(), points, sql.NullString{String: tradeNo, Valid: tradeNo != ""}, at.UTC()); err != nil {
		return fmt.Errorf("log refund: %w", err)
	}
	return nil
}

// maxPoints bounds a balance far below int64 overflow.
const maxPoints = 1 << 53

// movePoints adds delta to user's balance (creating the account) and
// returns the new balance; conflict when it would go below zero.
func movePoints(ctx context.Context, tx *sqlx.Tx, user, delta int64) (int64, error) {
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO points_account (user_id, balance) VALUES (?, 0)", user); err != nil {
		return 0, fmt.Errorf("open points account: %w", err)
	}
	var balance int64
	if err := tx.GetContext(ctx, &balance, "SELECT balance FROM points_account WHERE user_id = ? FOR UPDATE", user); err != nil {
		return 0, fmt.Errorf("read points of user %d: %w", user, err)
	}
	next := balance + delta
	if next < 0 {
		return 0, flashgate.Errorf(flashgate.Conflict, "not enough points: the balance is %d, %d needed", balance, -delta)
	}
	if next > maxPoints {
		return 0, flashgate.Errorf(flashgate.Conflict, "the balance would exceed %d points", int64(maxPoints))
	}
	if _, err := tx.ExecContext(ctx, "UPDATE points_account SET balance = ? WHERE user_id = ?", next, user); err != nil {
		return 0, fmt.Errorf("update points of user %d: %w", user, err)
	}
	return next, nil
}

func logPoints(ctx context.Context, tx *sqlx.Tx, user int64, order *string, typ string, delta, balance int64) (int64, error) {
	res, err := tx.ExecContext(ctx, "INSERT INTO points_log (user_id, out_trade_no, type, delta, balance) VALUES (?, ?, ?, ?, ?)",
		user, order, typ, delta, balance)
	if err != nil {
		var me *driver.MySQLError
		if errors.As(err, &me) && me.Number == 1062 { // duplicate (out_trade_no, type)
			return 0, flashgate.Errorf(flashgate.Conflict, "points %s of order %s already done", typ, *order)
		}
		return 0, fmt.Errorf("log points: %w", err)
	}
	return res.LastInsertId()
}

// GrantPoints adds delta (negative to take) to user's balance and returns
// the new balance; conflict when it would go below zero.
func (db *DB) GrantPoints(ctx context.Context, user, delta int64) (int64, error) {
	var balance int64
	err := db.inTxRC(ctx, func(tx *sqlx.Tx) error {
		var err error
		if balance, err = movePoints(ctx, tx, user, delta); err != nil {
			return err
		}
		_, err = logPoints(ctx, tx, user, nil, "grant", delta, balance)
		return err
	})
	return balance, err
}

// PointsBalance returns user's balance (0 without an account).
func (db *DB) PointsBalance(ctx context.Context, user int64) (int64, error) {
	var balance int64
	err := db.GetContext(ctx, &balance, "SELECT balance FROM points_account WHERE user_id = ?", user)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read points of user %d: %w", user, err)
	}
	return balance, nil
}
