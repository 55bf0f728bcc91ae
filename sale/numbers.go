package sale

import (
	"context"
	"time"
)

// Numbers are an item's stock numbers, read consistently (see Numbers).
type Numbers struct {
	Stock     int64 `json:"stock"`
	Remaining int64 `json:"remaining"`
	Reserved  int64 `json:"reserved"`
	Orders    int64 `json:"orders"`
	Unpaid    int64 `json:"unpaid"`
	Paid      int64 `json:"paid"`
	Cancelled int64 `json:"cancelled"`
	Refunded  int64 `json:"refunded"`
	// inRedis is false before publish and after archive: the item has no
	// stock in Redis then, by design, and no drift.
	inRedis bool
}

// Live is the orders holding a unit.
func (n Numbers) Live() int64 { return n.Unpaid + n.Paid }

// Drift is stock − remaining − reserved − live orders: 0 whenever the system
// is consistent and settled (contract §11). An item not published yet, or
// archived, has nothing in Redis by design: its drift is 0.
func (n Numbers) Drift() int64 {
	if !n.inRedis {
		return 0
	}
	return n.Stock - n.Remaining - n.Reserved - n.Live()
}

// numbersTries bounds the reads of Numbers.
const numbersTries = 10

// Numbers reads an item's numbers so that they add up. One read is: every
// shard's stock, units in transfer and outbox, each shard atomically
// (count.lua); then, in one MySQL snapshot, the stock, the orders by status
// and which outbox entries already have a row. A unit whose order commits
// between the Redis and the MySQL read can still be seen twice (remaining
// and a row) and a transfer can be seen in flight on both ends, so a read
// that does not add up is taken again, until one adds up or two in a row
// agree (a real, settled drift), at most numbersTries times.
func (o *Ops) Numbers(ctx context.Context, item int64) (Numbers, error) {
	it, act, err := o.db.ItemWithActivity(ctx, item)
	if err != nil {
		return Numbers{}, err
	}
	inRedis := act.PublishedAt != nil && act.ArchivedAt == nil
	var prev *Numbers
	for try := 0; ; try++ {
		n, err := o.readNumbers(ctx, item, it.Shards)
		if err != nil {
			return Numbers{}, err
		}
		n.inRedis = inRedis
		if n.Drift() == 0 || (prev != nil && *prev == n) || try == numbersTries-1 {
			return n, nil
		}
		prev = &n
		select {
		case <-ctx.Done():
			return n, nil
		case <-time.After(time.Duration(try+1) * 5 * time.Millisecond):
		}
	}
}

func (o *Ops) readNumbers(ctx context.Context, item int64, shards int) (Numbers, error) {
	counts, err := o.store.Counts(ctx, item, shards)
	if err != nil {
		o.log.Warn("read item numbers", "item", item, "err", err)
		return Numbers{}, unavailable("redis unavailable")
	}
	var n Numbers
	var outbox []string
	for _, c := range counts {
		n.Remaining += c.Stock + c.Transfer
		outbox = append(outbox, c.Outbox...)
	}
	mc, err := o.db.ItemCounts(ctx, item, outbox)
	if err != nil {
		if isDomain(err) {
			return Numbers{}, err
		}
		o.log.Warn("read item numbers", "item", item, "err", err)
		return Numbers{}, unavailable("mysql unavailable")
	}
	n.Stock = mc.Stock
	n.Reserved = int64(len(outbox) - mc.Existing)
	n.Unpaid, n.Paid, n.Cancelled, n.Refunded = mc.Unpaid, mc.Paid, mc.Cancelled, mc.Refunded
	n.Orders = n.Unpaid + n.Paid + n.Cancelled + n.Refunded
	return n, nil
}
