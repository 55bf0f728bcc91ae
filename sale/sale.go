// Package sale holds the operations that run a sale across MySQL and Redis
// (contract §11), shared by the admin API and the worker: publishing now or
// on schedule, changing a published window, closing, adjusting the stock of
// a live item, reading an item's numbers consistently, and archiving ended
// sales out of Redis. MySQL is the source of truth; every operation is
// written so that a process dying at any step leaves a state that a retry,
// or the fleet's background work, finishes.
package sale

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
)

// Ops runs sale operations. It is safe for concurrent use.
type Ops struct {
	db    *mysql.DB
	store *redis.Store
	log   *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// AfterLoad, when set, runs between a publish's load and its commit:
	// fault tests make a process die there.
	AfterLoad func(context.Context, *flashgate.Activity)
}

// New returns the operations on db and store.
func New(db *mysql.DB, store *redis.Store, log *slog.Logger) *Ops {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ops{db: db, store: store, log: log, Now: time.Now}
}

func unavailable(format string, args ...any) error {
	return flashgate.Errorf(flashgate.Unavailable, format, args...)
}

// isDomain reports whether err is an answer of the contract (conflict,
// invalid, not found…) rather than a dependency failing.
func isDomain(err error, codes ...flashgate.Code) bool {
	var e *flashgate.Error
	if !errors.As(err, &e) {
		return false
	}
	if len(codes) == 0 {
		return true
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// loadStock is the load step of a publish: fresh shards holding each item's
// stock, no metadata yet.
func (o *Ops) loadStock(ctx context.Context, a *flashgate.Activity) error {
	if err := o.store.LoadStock(ctx, a.Items); err != nil {
		o.log.Warn("load stock for publish", "activity", a.ID, "err", err)
		return unavailable("could not load stock into Redis; nothing was published")
	}
	if o.AfterLoad != nil {
		o.AfterLoad(ctx, a)
	}
	return nil
}

// Publish publishes an activity now (contract §6). The stock goes into Redis
// under the activity's row lock, published_at commits, and only then does
// the items' metadata, which lets gateways sell, go to Redis. So nothing
// sells before the commit, and a publish that fails or dies before it
// leaves nothing sold: its keys are leftovers the next publish replaces.
// When the commit's outcome is unknown (the connection broke during
// COMMIT), Publish reads the row back instead of guessing. A retry is
// always safe: on an activity already published it answers conflict, after
// making sure its items are visible.
func (o *Ops) Publish(ctx context.Context, id int64) (*flashgate.Activity, error) {
	a, err := o.db.Publish(ctx, id, o.Now(), o.loadStock)
	switch {
	case err == nil:
	case isDomain(err, flashgate.Conflict):
		if verr := o.makeVisible(ctx, id); verr != nil {
			o.log.Warn("make a published activity visible", "activity", id, "err", verr)
		}
		return nil, err
	case isDomain(err):
		return nil, err
	default:
		o.log.Warn("publish failed or its commit is unknown; reading it back", "activity", id, "err", err)
		back, rerr := o.db.Activity(context.WithoutCancel(ctx), id)
		if rerr != nil {
			return nil, unavailable("publish of activity %d may not have committed; retry (a retry is safe)", id)
		}
		if back.PublishedAt == nil {
			return nil, unavailable("could not publish activity %d; nothing was published", id)
		}
		a = back
	}
	// The metadata goes under the row lock, from MySQL: a close or a window
	// change that got the lock right after the commit is not undone.
	if err := o.makeVisible(context.WithoutCancel(ctx), id); err != nil {
		o.log.Warn("publish: write item metadata", "activity", id, "err", err)
		return nil, unavailable("activity %d is published but its items are not visible yet; retry, or the fleet makes them visible within seconds", id)
	}
	o.log.Info("published activity", "activity", id, "items", len(a.Items))
	return a, nil
}

// makeVisible rewrites the metadata of a published, not archived activity's
// items from MySQL, under the activity's row lock (a close or a window
// change racing it is not undone).
func (o *Ops) makeVisible(ctx context.Context, id int64) error {
	return o.db.WithActivity(ctx, id, func(ctx context.Context, a *flashgate.Activity) error {
		if a.PublishedAt == nil || a.ArchivedAt != nil {
			return nil
		}
		return o.store.PutItems(ctx, a.Items)
	})
}

// RepairVisible writes the metadata of the items of open published
// activities that Redis lacks (a publish that died between its commit and
// the metadata, or a Redis that lost it). Ended activities are left alone,
// so that it never races the archiver, and so are those published in the
// last few seconds, whose publisher is still writing them.
func (o *Ops) RepairVisible(ctx context.Context) error {
	now := o.Now()
	items, err := o.db.OpenItems(ctx, now, now.Add(-5*time.Second))
	if err != nil || len(items) == 0 {
		return err
	}
	ids := make([]int64, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	missing, err := o.store.MissingItems(ctx, ids)
	if err != nil || len(missing) == 0 {
		return err
	}
	want := map[int64]bool{}
	for _, id := range missing {
		want[id] = true
	}
	acts := map[int64]bool{}
	for _, it := range items {
		if want[it.ID] {
			acts[it.ActivityID] = true
		}
	}
	o.log.Warn("published items missing from Redis; writing them again", "items", missing)
	for act := range acts {
		if err := o.makeVisible(ctx, act); err != nil {
			return err
		}
	}
	return nil
}

// PublishDue publishes every scheduled activity whose time has come, each
// by exactly one process of the fleet (see mysql.DB.PublishDue).
func (o *Ops) PublishDue(ctx context.Context) error {
	for {
		a, err := o.db.PublishDue(ctx, o.Now(), o.loadStock)
		if err != nil {
			return err
		}
		if a == nil {
			return nil
		}
		if err := o.makeVisible(ctx, a.ID); err != nil {
			return err // RepairVisible makes them visible
		}
		late := ""
		if a.PublishAt != nil {
			late = a.PublishedAt.Sub(*a.PublishAt).String()
		}
		o.log.Info("published scheduled activity", "activity", a.ID, "items", len(a.Items), "late", late)
	}
}

// SchedulerTick is how often every admin and worker process looks for due
// scheduled publishes: a publish starts at most this long after its time.
const SchedulerTick = 200 * time.Millisecond

// RunScheduler publishes scheduled activities as they fall due, and every
// few seconds makes sure published items are visible, until ctx ends.
func (o *Ops) RunScheduler(ctx context.Context) {
	t := time.NewTicker(SchedulerTick)
	defer t.Stop()
	var lastRepair time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := o.PublishDue(jctx); err != nil && ctx.Err() == nil {
			o.log.Warn("scheduled publish", "err", err)
		}
		if time.Since(lastRepair) >= 2*time.Second {
			lastRepair = time.Now()
			if err := o.RepairVisible(jctx); err != nil && ctx.Err() == nil {
				o.log.Warn("repair published items", "err", err)
			}
		}
		cancel()
	}
}

// putWindow is the apply step of a change of a published window: the
// items' metadata, rewritten, invalidates every gateway's cached copy.
func (o *Ops) putWindow(ctx context.Context, a *flashgate.Activity) error {
	if err := o.store.PutItems(ctx, a.Items); err != nil {
		o.log.Warn("write item windows", "activity", a.ID, "err", err)
		return unavailable("could not update the items in Redis; nothing changed")
	}
	return nil
}

// Update changes an activity (contract §11 PATCH).
func (o *Ops) Update(ctx context.Context, id int64, p mysql.ActivityPatch) (*flashgate.Activity, error) {
	return o.db.UpdateActivity(ctx, id, p, o.Now(), o.putWindow)
}

// Close ends a published activity now.
func (o *Ops) Close(ctx context.Context, id int64) (*flashgate.Activity, error) {
	return o.db.CloseActivity(ctx, id, o.Now(), o.putWindow)
}
