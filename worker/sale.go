package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
)

// driftWatch remembers, per live item, since when its drift is not 0 and
// whether that was logged, so that a persisting drift is logged once.
type driftWatch struct {
	mu   sync.Mutex
	last time.Time
	m    map[int64]*drifting
}

type drifting struct {
	drift  int64
	since  time.Time
	logged bool
}

// Drift measures the stock drift of live items (contract §11 reconcile)
// every DriftEvery (each measure costs one Redis pipeline and one MySQL
// snapshot per live item), sets the gauges, and logs a drift once when it
// has lasted DriftAfter (a drift seen once is usually work in flight: an
// adjustment, a transfer), and once when it clears.
func (w *Worker) Drift(ctx context.Context) error {
	d := &w.drift
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if now.Sub(d.last) < w.cfg.DriftEvery {
		return nil
	}
	d.last = now
	items, err := w.db.LiveItems(ctx, now)
	if err != nil {
		return err
	}
	if d.m == nil {
		d.m = map[int64]*drifting{}
	}
	seen := map[int64]bool{}
	var units, n int64
	var errs []error
	for _, it := range items {
		seen[it.ID] = true
		nums, err := w.ops.Numbers(ctx, it.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		drift := nums.Drift()
		cur := d.m[it.ID]
		if drift == 0 {
			if cur != nil && cur.logged {
				w.log.Info("stock drift cleared", "item", it.ID)
			}
			delete(d.m, it.ID)
			continue
		}
		units += max(drift, -drift)
		n++
		if cur == nil {
			d.m[it.ID] = &drifting{drift: drift, since: now}
			continue
		}
		cur.drift = drift
		if !cur.logged && now.Sub(cur.since) >= w.cfg.DriftAfter {
			cur.logged = true
			w.log.Error("stock drift persists: stock != remaining + reserved + live orders", "item", it.ID, "drift", drift,
				"stock", nums.Stock, "remaining", nums.Remaining, "reserved", nums.Reserved, "live_orders", nums.Live(), "since", cur.since)
		}
	}
	for id := range d.m {
		if !seen[id] {
			delete(d.m, id) // no longer live
		}
	}
	w.m.driftUnits.Set(float64(units))
	w.m.driftItems.Set(float64(n))
	return errors.Join(errs...)
}

// Archive removes from Redis every key of the activities that ended more
// than ArchiveAfter ago and are settled (nothing reserved, in transfer or
// in a pending adjustment), and marks them archived. One process does each
// activity (its row is locked, and skipped by the others).
func (w *Worker) Archive(ctx context.Context) error {
	cutoff := time.Now().Add(-w.cfg.ArchiveAfter)
	var skip []int64
	for i := 0; i < 100; i++ {
		id, err := w.db.ArchiveOne(ctx, cutoff, skip, w.dropIfSettled)
		switch {
		case errors.Is(err, mysql.ErrNotSettled):
			skip = append(skip, id)
			continue
		case err != nil:
			return err
		case id == 0:
			return nil
		}
		w.m.archived.Inc()
		w.log.Info("archived activity", "activity", id)
	}
	return nil
}

// dropIfSettled deletes the activity's keys unless something of it is
// still reserved or in transfer.
func (w *Worker) dropIfSettled(ctx context.Context, a *flashgate.Activity) error {
	for _, it := range a.Items {
		counts, err := w.store.Counts(ctx, it.ID, it.Shards)
		if err != nil {
			return err
		}
		for _, c := range counts {
			if c.Transfer != 0 || len(c.Outbox) != 0 {
				return mysql.ErrNotSettled
			}
		}
	}
	return w.store.DropItems(ctx, a.Items)
}

// pruneEvery is how often expired bans are removed.
const pruneEvery = 10 * time.Second

// PruneBans removes expired bans from Redis (listing them does), so that
// the ban list does not grow with every automatic ban ever given.
func (w *Worker) PruneBans(ctx context.Context) error {
	if time.Since(w.lastPrune) < pruneEvery {
		return nil
	}
	w.lastPrune = time.Now()
	_, err := w.bans.List(ctx)
	return err
}
