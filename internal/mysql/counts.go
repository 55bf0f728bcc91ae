package mysql

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate"
)

// An item's orders by status are counted in seckill_order_count (migration
// 006), not by counting its rows: every transaction that inserts an order
// row or changes an order's status adds its changes to the counters in the
// same transaction, so they commit or roll back with the rows, and a read
// is the sum of a few counter rows whatever the size of the sale.
//
// Each (item, status) has several rows, the slots, so that transactions
// that change orders of one item at once do not all wait for one row lock:
//
//   - slot 0 is written only by transactions that hold the item's
//     seckill_item row lock already (every change that moves stock_left:
//     the worker's inserts, cancels, the expiry sweep, refunds). It costs
//     them no extra wait, and since they all take the item's row first,
//     slot 0 adds no new lock order, so no new deadlock.
//   - a payment (unpaid to paid) does not touch the item row: it writes
//     slot 1 + hash(order id) mod payerSlots, so concurrent payments of one
//     hot item spread over that many rows, and never wait for a worker's
//     batch.
//
// A slot's n may go negative (a payment takes from the unpaid count of its
// slot, while the unpaid orders were added to slot 0); only the sum over
// the slots means something.
const payerSlots = 8

// countDelta is a change of an item's count of one status, in one slot.
type countDelta struct {
	item   int64
	status flashgate.OrderStatus
	slot   int
	n      int64
}

// paySlot is the counter slot of a payment of order id (1..payerSlots).
func paySlot(orderID string) int {
	h := fnv.New32a()
	h.Write([]byte(orderID))
	return 1 + int(h.Sum32()%payerSlots)
}

// moveCount is the deltas of one order going from status from to to.
func moveCount(item int64, from, to flashgate.OrderStatus, slot int, n int64) []countDelta {
	return []countDelta{{item, from, slot, -n}, {item, to, slot, n}}
}

// addCounts adds ds to the counters in one statement. The rows are taken in
// primary key order, the same in every transaction, so that two
// transactions never wait for each other's counter rows crosswise. Zero
// deltas are left out; deltas of one row are summed.
func addCounts(ctx context.Context, tx *sqlx.Tx, ds []countDelta) error {
	type key struct {
		item   int64
		status flashgate.OrderStatus
		slot   int
	}
	sum := make(map[key]int64, len(ds))
	for _, d := range ds {
		sum[key{d.item, d.status, d.slot}] += d.n
	}
	keys := make([]key, 0, len(sum))
	for k, n := range sum {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.item != b.item {
			return a.item < b.item
		}
		if a.status != b.status {
			return a.status < b.status // ascii_bin: byte order
		}
		return a.slot < b.slot
	})
	args := make([]any, 0, 4*len(keys))
	for _, k := range keys {
		args = append(args, k.item, string(k.status), k.slot, sum[k])
	}
	q := "INSERT INTO seckill_order_count (item_id, status, slot, n) VALUES " + valueRows(len(keys), 4) +
		" ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("count orders: %w", err)
	}
	return nil
}
