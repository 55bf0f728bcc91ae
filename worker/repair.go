package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/kafka"
)

// repairLoop runs Repair every tick. It has a goroutine of its own: a repair
// waits out RepairGrace and the consumers' catching up, and must not hold
// the relay or the restocker meanwhile.
func (w *Worker) repairLoop(ctx context.Context) {
	everyTick(ctx, w.cfg.Tick, func() { w.jobFailed(ctx, "repair", w.Repair(ctx)) })
}

// Repair probes every shard of every published item and repairs the items
// that have a fenced shard (docs/design.md, "Redis rewinds").
func (w *Worker) Repair(ctx context.Context) error {
	items, err := w.store.PublishedItems(ctx)
	if err != nil {
		return err
	}
	var errs []error
	var fenced []int64
	for _, id := range items {
		it, err := w.store.Items().Get(ctx, id, time.Now())
		if err != nil || it.Missing {
			errs = append(errs, err)
			continue
		}
		for shard := 0; shard < it.Shards; shard++ {
			f, err := w.store.Probe(ctx, id, shard)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if f {
				fenced = append(fenced, id)
				break
			}
		}
	}
	if len(fenced) > 0 {
		errs = append(errs, w.repairItems(ctx, fenced))
	}
	return errors.Join(errs...)
}

// repairItems repairs items together: a Redis restart fences every item it
// restored, and each waiting out the grace and the catch-up on its own
// would keep the last one unsold for as many graces.
func (w *Worker) repairItems(ctx context.Context, items []int64) error {
	var errs []error
	var fenced []fencedItem
	defer func() {
		for _, f := range fenced {
			f.release()
		}
	}()
	for _, id := range items {
		f, ok, err := w.fenceItem(ctx, id)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			fenced = append(fenced, f)
		}
	}
	if len(fenced) == 0 {
		return errors.Join(errs...)
	}
	w.log.Warn("Redis may have lost writes: items fenced for repair", "items", len(fenced), "grace", w.cfg.RepairGrace)
	if !sleep(ctx, w.cfg.RepairGrace) {
		return ctx.Err()
	}
	if err := w.catchUp(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, f := range fenced {
		errs = append(errs, w.rebuildItem(ctx, f))
	}
	return errors.Join(errs...)
}

// fencedItem is an item this worker holds the repair lock of and fenced.
type fencedItem struct {
	id      int64
	shards  int
	began   time.Time
	release func()
}

// fenceItem takes the item's repair lock (ok false: another worker has it)
// and fences every shard of it.
func (w *Worker) fenceItem(ctx context.Context, item int64) (fencedItem, bool, error) {
	name := "flashgate-repair:" + w.store.Prefix() + ":" + strconv.FormatInt(item, 10)
	if len(name) > 64 {
		name = name[len(name)-64:]
	}
	release, ok, err := w.db.TryLock(ctx, name)
	if err != nil || !ok {
		return fencedItem{}, false, err
	}
	f := fencedItem{id: item, began: time.Now(), release: release}
	snap, err := w.db.Snapshot(ctx, item)
	if err != nil {
		release()
		return fencedItem{}, false, err
	}
	f.shards = snap.Shards
	for shard := 0; shard < f.shards; shard++ {
		if err := w.store.Fence(ctx, item, shard); err != nil {
			release()
			return fencedItem{}, false, err
		}
	}
	return f, true, nil
}

// rebuildItem rebuilds a fenced item's shards from MySQL and the outboxes once
// everything Kafka holds for it is written (the proof is in docs/design.md):
//
//  1. fence every shard of the item: from here on nothing takes, moves or
//     returns a unit of it, and its buys answer 503;
//  2. wait RepairGrace, longer than any producer keeps retrying a message,
//     so that every reservation taken before the fence is in Kafka or never
//     will be (then it is only in an outbox);
//  3. note Kafka's end offsets and wait until the consumer group has
//     committed past them: every reservation in Kafka is then a row;
//  4. read the outboxes, then MySQL's stock_left and orders in one
//     snapshot; a reservation in an outbox without a row will become a live
//     order unless its user holds one already;
//  5. set the shards' stock to stock_left minus those, spread evenly, their
//     buyer marks to the live orders and pending reservations, drop the
//     transfer logs, settle outbox entries whose rows exist;
//  6. unfence.
//
// Steps 1 to 3 are done by repairItems for all fenced items at once. One
// worker repairs an item at a time (a MySQL named lock); a repair cut short
// leaves the item fenced, and the next tick starts it again.
func (w *Worker) rebuildItem(ctx context.Context, f fencedItem) error {
	item, shards, began := f.id, f.shards, f.began
	var err error

	outboxes := make([]map[string]string, shards)
	for shard := range outboxes {
		if outboxes[shard], err = w.store.Outbox(ctx, item, shard); err != nil {
			return err
		}
	}
	snap, err := w.db.Snapshot(ctx, item)
	if err != nil {
		return err
	}
	marks := make([]map[int64]string, shards)
	for shard := range marks {
		marks[shard] = map[int64]string{}
	}
	for user, order := range snap.Live {
		marks[flashgate.HomeShard(user, shards)][user] = order
	}
	// Reservations without rows, oldest first: the first of a user is
	// marked. A user has two only if marks were lost while entries were not
	// (a rewind drops a suffix of writes, and a reservation's mark and entry
	// are written by one script, so it does not); then whichever reaches
	// MySQL second is refused by the one-live-order key, stored cancelled.
	var waiting []flashgate.Reservation
	settled := make([][]string, shards)
	for shard, ob := range outboxes {
		for field, value := range ob {
			written := true
			for r, err := range flashgate.EntryLines([]byte(value)) {
				if err != nil {
					w.log.Error("repair: malformed outbox entry", "item", item, "orders", field, "err", err)
					written = false
					continue
				}
				if !snap.Rows[r.OrderID] {
					waiting = append(waiting, r)
					written = false
				}
			}
			if written {
				settled[shard] = append(settled[shard], field)
			}
		}
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].At.Before(waiting[j].At) })
	takers := int64(0)
	for _, r := range waiting {
		home := flashgate.HomeShard(r.UserID, shards)
		if _, held := marks[home][r.UserID]; held {
			continue
		}
		marks[home][r.UserID] = r.OrderID
		takers++
	}
	left := snap.StockLeft - takers
	if left < 0 {
		// Only a unit sold before the fence from a rewound shard can do
		// this; the MySQL stock guard keeps it from being oversold.
		w.log.Error("repair: reservations exceed MySQL stock", "item", item, "stock_left", snap.StockLeft, "waiting", takers)
		left = 0
	}
	for shard := 0; shard < shards; shard++ {
		units := left / int64(shards)
		if int64(shard) < left%int64(shards) {
			units++
		}
		if err := w.store.Rebuild(ctx, item, shard, units, marks[shard]); err != nil {
			return err
		}
		if _, err := w.store.Settle(ctx, item, shard, settled[shard]); err != nil {
			return err
		}
	}
	for shard := 0; shard < shards; shard++ {
		if err := w.store.Unfence(ctx, item, shard); err != nil {
			return err
		}
	}
	if err := w.store.SetSoldOut(ctx, item, left == 0); err != nil {
		return err
	}
	w.m.repaired.Inc()
	w.log.Warn("item repaired after a Redis rewind", "item", item, "remaining", left,
		"live", len(snap.Live), "waiting", takers, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// catchUp waits until the consumer group has written everything Kafka held
// when it was called.
func (w *Worker) catchUp(ctx context.Context) error {
	end, err := kafka.EndOffsets(ctx, w.cfg.KafkaSecurity, w.cfg.Brokers, w.cfg.Topic)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		done, err := kafka.CaughtUp(ctx, w.cfg.KafkaSecurity, w.cfg.Brokers, w.cfg.Topic, w.cfg.Group, end)
		if err == nil && done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("repair: consumers did not catch up with kafka in 2m (last error: %v)", err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}
