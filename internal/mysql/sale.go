package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/flashgate/flashgate"
)

func conflict(format string, args ...any) error {
	return flashgate.Errorf(flashgate.Conflict, format, args...)
}

func unprocessable(format string, args ...any) error {
	return &flashgate.Error{Code: flashgate.Invalid, Status: 422, Message: fmt.Sprintf(format, args...)}
}

// statusFilter is the WHERE clause of each status, at now (the ? args).
func statusFilter(st flashgate.ActivityStatus, now time.Time) (string, []any) {
	const pub = "published_at IS NOT NULL AND archived_at IS NULL"
	switch st {
	case flashgate.StatusDraft:
		return "published_at IS NULL AND publish_at IS NULL AND archived_at IS NULL", nil
	case flashgate.StatusScheduled:
		return "published_at IS NULL AND publish_at IS NOT NULL AND archived_at IS NULL", nil
	case flashgate.StatusUpcoming:
		return pub + " AND end_at > ? AND start_at > ?", []any{now, now}
	case flashgate.StatusLive:
		return pub + " AND end_at > ? AND start_at <= ?", []any{now, now}
	case flashgate.StatusEnded:
		return pub + " AND end_at <= ?", []any{now}
	case flashgate.StatusArchived:
		return "archived_at IS NOT NULL", nil
	}
	return "1=1", nil
}

// ListActivities returns up to limit activities, newest first, optionally
// only those of one status at now (status "" means all). Items are not
// loaded.
func (db *DB) ListActivities(ctx context.Context, status flashgate.ActivityStatus, now time.Time, limit int) ([]flashgate.Activity, error) {
	where, args := statusFilter(status, now.UTC())
	var rows []activityRow
	if err := db.SelectContext(ctx, &rows,
		"SELECT "+activityColumns+" FROM seckill_activity WHERE "+where+" ORDER BY id DESC LIMIT ?", append(args, limit)...); err != nil {
		return nil, fmt.Errorf("list activities: %w", err)
	}
	out := make([]flashgate.Activity, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// ActivityPatch is a change of an activity; nil fields stay as they are.
type ActivityPatch struct {
	Name           *string
	StartAt, EndAt *time.Time
}

// UpdateActivity applies p under the activity's row lock, by the rules of
// contract §11: before publish anything may change; after it, start_at only
// while upcoming and end_at only to a time after now. When the window of a
// published activity changes, apply is called with the activity and its
// items as they will be (it rewrites what gateways read) before the commit:
// if it fails, nothing changes.
func (db *DB) UpdateActivity(ctx context.Context, id int64, p ActivityPatch, now time.Time, apply func(context.Context, *flashgate.Activity) error) (*flashgate.Activity, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update activity: %w", err)
	}
	defer tx.Rollback()
	a, err := lockActivity(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	status := a.StatusAt(now)
	start, end := a.StartAt, a.EndAt
	if p.StartAt != nil {
		start = *p.StartAt
	}
	if p.EndAt != nil {
		end = *p.EndAt
	}
	timesChanged := !start.Equal(a.StartAt) || !end.Equal(a.EndAt)
	switch status {
	case flashgate.StatusEnded, flashgate.StatusArchived:
		if timesChanged {
			return nil, conflict("activity %d is %s: its times can no longer change", id, status)
		}
	case flashgate.StatusLive:
		if !start.Equal(a.StartAt) {
			return nil, conflict("start_at: activity %d is live; start_at can change only while it is upcoming", id)
		}
	}
	if a.PublishedAt != nil && !end.Equal(a.EndAt) && !end.After(now) {
		return nil, conflict("end_at: activity %d is published; end_at can only move to a time after now (use close to end it now)", id)
	}
	if !end.After(start) {
		return nil, unprocessable("end_at: must be after start_at")
	}
	if a.PublishAt != nil && a.PublishedAt == nil && !a.PublishAt.Before(end) {
		return nil, unprocessable("end_at: must be after the scheduled publish_at %s", a.PublishAt.Format(time.RFC3339))
	}
	if p.Name != nil {
		a.Name = *p.Name
	}
	a.StartAt, a.EndAt = start, end
	if _, err := tx.ExecContext(ctx, "UPDATE seckill_activity SET name = ?, start_at = ?, end_at = ? WHERE id = ?",
		a.Name, start.UTC(), end.UTC(), id); err != nil {
		return nil, fmt.Errorf("update activity: %w", err)
	}
	if err := loadItemsTx(ctx, tx, a); err != nil {
		return nil, err
	}
	if a.PublishedAt != nil && a.ArchivedAt == nil && timesChanged {
		if err := apply(ctx, a); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update activity: commit: %w", err)
	}
	return a, nil
}

func loadItemsTx(ctx context.Context, tx *sqlx.Tx, a *flashgate.Activity) error {
	var rows []itemRow
	if err := tx.SelectContext(ctx, &rows, "SELECT "+itemColumns+" FROM seckill_item WHERE activity_id = ? ORDER BY id", a.ID); err != nil {
		return fmt.Errorf("read items of activity %d: %w", a.ID, err)
	}
	a.Items = make([]flashgate.Item, 0, len(rows))
	for _, r := range rows {
		a.Items = append(a.Items, r.domain(a))
	}
	return nil
}

// CloseActivity ends a published activity now: end_at becomes now (and
// start_at too, if it was later). apply rewrites what gateways read before
// the commit, as in UpdateActivity.
func (db *DB) CloseActivity(ctx context.Context, id int64, now time.Time, apply func(context.Context, *flashgate.Activity) error) (*flashgate.Activity, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("close activity: %w", err)
	}
	defer tx.Rollback()
	a, err := lockActivity(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	switch st := a.StatusAt(now); st {
	case flashgate.StatusDraft, flashgate.StatusScheduled:
		return nil, conflict("activity %d is %s: only a published activity can be closed", id, st)
	case flashgate.StatusEnded, flashgate.StatusArchived:
		return nil, conflict("activity %d has already ended", id)
	}
	now = now.UTC().Truncate(time.Millisecond)
	a.EndAt = now
	if a.StartAt.After(now) {
		a.StartAt = now
	}
	if _, err := tx.ExecContext(ctx, "UPDATE seckill_activity SET start_at = ?, end_at = ? WHERE id = ?", a.StartAt, a.EndAt, id); err != nil {
		return nil, fmt.Errorf("close activity: %w", err)
	}
	if err := loadItemsTx(ctx, tx, a); err != nil {
		return nil, err
	}
	if err := apply(ctx, a); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("close activity: commit: %w", err)
	}
	return a, nil
}

// DeleteActivity deletes a draft or scheduled activity with its items.
func (db *DB) DeleteActivity(ctx context.Context, id int64, now time.Time) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		a, err := lockActivity(ctx, tx, id)
		if err != nil {
			return err
		}
		if st := a.StatusAt(now); st != flashgate.StatusDraft && st != flashgate.StatusScheduled {
			return conflict("activity %d is %s: only a draft or scheduled activity can be deleted", id, st)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM seckill_item WHERE activity_id = ?", id); err != nil {
			return fmt.Errorf("delete items of activity %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM seckill_activity WHERE id = ?", id); err != nil {
			return fmt.Errorf("delete activity %d: %w", id, err)
		}
		return nil
	})
}

// Schedule sets the time at which the fleet publishes an unpublished
// activity. at must be before end_at; the activity must have items.
func (db *DB) Schedule(ctx context.Context, id int64, at time.Time) (*flashgate.Activity, error) {
	var out *flashgate.Activity
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		a, err := lockActivity(ctx, tx, id)
		if err != nil {
			return err
		}
		if a.PublishedAt != nil {
			return conflict("activity %d is already published", id)
		}
		if !at.Before(a.EndAt) {
			return unprocessable("at: must be before end_at %s", a.EndAt.Format(time.RFC3339))
		}
		var n int
		if err := tx.GetContext(ctx, &n, "SELECT COUNT(*) FROM seckill_item WHERE activity_id = ?", id); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
		if n == 0 {
			return unprocessable("activity %d has no items", id)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE seckill_activity SET publish_at = ? WHERE id = ?", at.UTC(), id); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
		t := at.UTC()
		a.PublishAt = &t
		out = a
		return nil
	})
	return out, err
}

// Unschedule cancels a scheduled publish; the activity is a draft again.
func (db *DB) Unschedule(ctx context.Context, id int64, now time.Time) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		a, err := lockActivity(ctx, tx, id)
		if err != nil {
			return err
		}
		if st := a.StatusAt(now); st != flashgate.StatusScheduled {
			return conflict("activity %d is %s, not scheduled", id, st)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE seckill_activity SET publish_at = NULL WHERE id = ?", id); err != nil {
			return fmt.Errorf("unschedule: %w", err)
		}
		return nil
	})
}

// PublishDue publishes one scheduled activity whose publish_at has come, if
// any, and returns it (nil when none is due). The row is taken with FOR
// UPDATE SKIP LOCKED: of all the processes polling at once, exactly one gets
// a given activity, and the others move on to other due rows. If the one
// that got it dies mid-publish, its connection drops, MySQL rolls the
// transaction back and releases the row, and the next poll of any process
// takes it again (the Redis keys half-written by the dead one are leftovers
// of an unpublished activity, replaced by load). A scheduled activity that
// can no longer be published (ended, or without items) is unscheduled.
func (db *DB) PublishDue(ctx context.Context, now time.Time, load func(context.Context, *flashgate.Activity) error) (*flashgate.Activity, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("publish due: %w", err)
	}
	defer tx.Rollback()
	var r activityRow
	err = tx.GetContext(ctx, &r, "SELECT "+activityColumns+` FROM seckill_activity
		WHERE publish_at <= ? AND published_at IS NULL AND archived_at IS NULL
		ORDER BY publish_at LIMIT 1 FOR UPDATE SKIP LOCKED`, now.UTC())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("publish due: %w", err)
	}
	a := r.domain()
	out, err := publishLocked(ctx, tx, &a, now, load)
	var fe *flashgate.Error
	if errors.As(err, &fe) && fe.Code == flashgate.Invalid {
		if _, uerr := tx.ExecContext(ctx, "UPDATE seckill_activity SET publish_at = NULL WHERE id = ?", a.ID); uerr == nil {
			tx.Commit()
		}
		return nil, fmt.Errorf("scheduled publish of activity %d abandoned: %w", a.ID, err)
	}
	return out, err
}

// ItemPatch is a change of an unpublished item; nil fields stay.
type ItemPatch struct {
	Name        *string
	Price       *flashgate.Money
	Points      *int64
	Shards      *int
	RequirePath *bool
	// RequireCaptcha: the path needs a solved captcha (contract §12).
	RequireCaptcha *bool
}

// UpdateItem applies p to an item whose activity is not published yet.
func (db *DB) UpdateItem(ctx context.Context, id int64, p ItemPatch) (*flashgate.Item, error) {
	err := db.inTx(ctx, func(tx *sqlx.Tx) error {
		var activity int64
		err := tx.GetContext(ctx, &activity, "SELECT activity_id FROM seckill_item WHERE id = ?", id)
		if errors.Is(err, sql.ErrNoRows) {
			return flashgate.Errorf(flashgate.NotFound, "item %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("update item: %w", err)
		}
		a, err := lockActivity(ctx, tx, activity)
		if err != nil {
			return err
		}
		if a.PublishedAt != nil {
			return conflict("item %d: its activity is published; items change only before publish", id)
		}
		var set []string
		var args []any
		add := func(col string, v any) { set = append(set, col+" = ?"); args = append(args, v) }
		if p.Name != nil {
			add("name", *p.Name)
		}
		if p.Price != nil {
			add("price", p.Price.String())
		}
		if p.Points != nil {
			add("points", *p.Points)
		}
		if p.Shards != nil {
			add("shards", *p.Shards)
		}
		if p.RequirePath != nil {
			add("require_path", *p.RequirePath)
		}
		if p.RequireCaptcha != nil {
			add("require_captcha", *p.RequireCaptcha)
		}
		if len(set) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "UPDATE seckill_item SET "+strings.Join(set, ", ")+" WHERE id = ?", append(args, id)...); err != nil {
			return fmt.Errorf("update item: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return db.Item(ctx, id)
}

// ItemWithActivity returns an item and its activity (without items).
func (db *DB) ItemWithActivity(ctx context.Context, id int64) (*flashgate.Item, *flashgate.Activity, error) {
	it, err := db.Item(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var r activityRow
	if err := db.GetContext(ctx, &r, "SELECT "+activityColumns+" FROM seckill_activity WHERE id = ?", it.ActivityID); err != nil {
		return nil, nil, fmt.Errorf("read activity of item %d: %w", id, err)
	}
	a := r.domain()
	return it, &a, nil
}

// WithActivity calls fn with an activity and its items while holding the
// activity's row lock. Writers of what gateways read about an activity's
// items (its window, an item's stock) do it under this lock, so that a
// slower writer never puts back what a faster one replaced.
func (db *DB) WithActivity(ctx context.Context, id int64, fn func(context.Context, *flashgate.Activity) error) error {
	return db.inTx(ctx, func(tx *sqlx.Tx) error {
		a, err := lockActivity(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := loadItemsTx(ctx, tx, a); err != nil {
			return err
		}
		return fn(ctx, a)
	})
}
