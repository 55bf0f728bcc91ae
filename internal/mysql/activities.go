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

type activityRow struct {
	ID          int64        `db:"id"`
	Name        string       `db:"name"`
	StartAt     time.Time    `db:"start_at"`
	EndAt       time.Time    `db:"end_at"`
	PublishedAt sql.NullTime `db:"published_at"`
	PublishAt   sql.NullTime `db:"publish_at"`
	ArchivedAt  sql.NullTime `db:"archived_at"`
}

const activityColumns = "id, name, start_at, end_at, published_at, publish_at, archived_at"

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func (r activityRow) domain() flashgate.Activity {
	return flashgate.Activity{ID: r.ID, Name: r.Name, StartAt: r.StartAt.UTC(), EndAt: r.EndAt.UTC(),
		PublishedAt: nullTime(r.PublishedAt), PublishAt: nullTime(r.PublishAt), ArchivedAt: nullTime(r.ArchivedAt)}
}

type itemRow struct {
	ID             int64  `db:"id"`
	ActivityID     int64  `db:"activity_id"`
	Name           string `db:"name"`
	Price          string `db:"price"`
	Points         int64  `db:"points"`
	Stock          int64  `db:"stock"`
	Shards         int    `db:"shards"`
	RequirePath    bool   `db:"require_path"`
	RequireCaptcha bool   `db:"require_captcha"`
}

func (r itemRow) domain(a *flashgate.Activity) flashgate.Item {
	price, _ := flashgate.ParseMoney(r.Price)
	return flashgate.Item{
		ID: r.ID, ActivityID: r.ActivityID, Name: r.Name, Price: price, Points: r.Points,
		Stock: r.Stock, Shards: r.Shards, RequirePath: r.RequirePath, RequireCaptcha: r.RequireCaptcha,
		StartAt: a.StartAt, EndAt: a.EndAt,
	}
}

const itemColumns = "id, activity_id, name, price, points, stock, shards, require_path, require_captcha"

// CreateActivity inserts an activity and returns its id.
func (db *DB) CreateActivity(ctx context.Context, a *flashgate.Activity) (int64, error) {
	res, err := db.ExecContext(ctx, "INSERT INTO seckill_activity (name, start_at, end_at) VALUES (?, ?, ?)",
		a.Name, a.StartAt.UTC(), a.EndAt.UTC())
	if err != nil {
		return 0, fmt.Errorf("create activity: %w", err)
	}
	return res.LastInsertId()
}

// Activity returns an activity with its items, or a not_found error.
func (db *DB) Activity(ctx context.Context, id int64) (*flashgate.Activity, error) {
	var r activityRow
	err := db.GetContext(ctx, &r, "SELECT "+activityColumns+" FROM seckill_activity WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flashgate.Errorf(flashgate.NotFound, "activity %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read activity %d: %w", id, err)
	}
	a := r.domain()
	if err := db.loadItems(ctx, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (db *DB) loadItems(ctx context.Context, a *flashgate.Activity) error {
	var rows []itemRow
	if err := db.SelectContext(ctx, &rows, "SELECT "+itemColumns+" FROM seckill_item WHERE activity_id = ? ORDER BY id", a.ID); err != nil {
		return fmt.Errorf("read items of activity %d: %w", a.ID, err)
	}
	a.Items = make([]flashgate.Item, 0, len(rows))
	for _, r := range rows {
		a.Items = append(a.Items, r.domain(a))
	}
	return nil
}

// Item returns an item with its activity's window, or a not_found error.
func (db *DB) Item(ctx context.Context, id int64) (*flashgate.Item, error) {
	var r itemRow
	err := db.GetContext(ctx, &r, "SELECT "+itemColumns+" FROM seckill_item WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flashgate.Errorf(flashgate.NotFound, "item %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read item %d: %w", id, err)
	}
	var a activityRow
	if err := db.GetContext(ctx, &a, "SELECT "+activityColumns+" FROM seckill_activity WHERE id = ?", r.ActivityID); err != nil {
		return nil, fmt.Errorf("read activity of item %d: %w", id, err)
	}
	act := a.domain()
	it := r.domain(&act)
	return &it, nil
}

// AddItem inserts an item into an unpublished activity and returns its id.
func (db *DB) AddItem(ctx context.Context, it *flashgate.Item) (int64, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("add item: %w", err)
	}
	defer tx.Rollback()
	var published sql.NullTime
	err = tx.GetContext(ctx, &published, "SELECT published_at FROM seckill_activity WHERE id = ? FOR UPDATE", it.ActivityID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, flashgate.Errorf(flashgate.NotFound, "activity %d not found", it.ActivityID)
	}
	if err != nil {
		return 0, fmt.Errorf("add item: %w", err)
	}
	if published.Valid {
		return 0, flashgate.Errorf(flashgate.Conflict, "activity %d is already published", it.ActivityID)
	}
	res, err := tx.ExecContext(ctx,
		"INSERT INTO seckill_item (activity_id, name, price, points, stock, stock_left, shards, require_path, require_captcha) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		it.ActivityID, it.Name, it.Price.String(), it.Points, it.Stock, it.Stock, it.Shards, it.RequirePath, it.RequireCaptcha)
	if err != nil {
		return 0, fmt.Errorf("add item: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("add item: %w", err)
	}
	return id, tx.Commit()
}

// Publish publishes an activity: under the activity's row lock it checks that
// it is unpublished, not ended and has items, calls load (which puts the
// stock into Redis), and only then marks it published. A failed load leaves
// it unpublished; a publish racing another waits for it and then conflicts.
// The items' metadata, which makes them visible to gateways, is the
// caller's to write once Publish has returned: nothing can sell before the
// commit, so a publish that fails, or dies, leaves nothing sold behind.
func (db *DB) Publish(ctx context.Context, id int64, now time.Time, load func(context.Context, *flashgate.Activity) error) (*flashgate.Activity, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	defer tx.Rollback()
	a, err := lockActivity(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	return publishLocked(ctx, tx, a, now, load)
}

// lockActivity reads an activity under its row lock.
func lockActivity(ctx context.Context, tx *sqlx.Tx, id int64) (*flashgate.Activity, error) {
	var r activityRow
	err := tx.GetContext(ctx, &r, "SELECT "+activityColumns+" FROM seckill_activity WHERE id = ? FOR UPDATE", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, flashgate.Errorf(flashgate.NotFound, "activity %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("lock activity %d: %w", id, err)
	}
	a := r.domain()
	return &a, nil
}

// publishLocked publishes a, whose row tx holds locked, and commits.
func publishLocked(ctx context.Context, tx *sqlx.Tx, a *flashgate.Activity, now time.Time, load func(context.Context, *flashgate.Activity) error) (*flashgate.Activity, error) {
	id := a.ID
	if a.PublishedAt != nil {
		return a, flashgate.Errorf(flashgate.Conflict, "activity %d is already published", id)
	}
	if !now.Before(a.EndAt) {
		return nil, &flashgate.Error{Code: flashgate.Invalid, Status: 422, Message: fmt.Sprintf("activity %d has already ended", id)}
	}
	var rows []itemRow
	if err := tx.SelectContext(ctx, &rows, "SELECT "+itemColumns+" FROM seckill_item WHERE activity_id = ? ORDER BY id", id); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if len(rows) == 0 {
		return nil, &flashgate.Error{Code: flashgate.Invalid, Status: 422, Message: fmt.Sprintf("activity %d has no items", id)}
	}
	for _, row := range rows {
		a.Items = append(a.Items, row.domain(a))
	}
	if err := load(ctx, a); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE seckill_activity SET published_at = ? WHERE id = ?", now.UTC(), id); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("publish: commit: %w", err)
	}
	t := now.UTC()
	a.PublishedAt = &t
	return a, nil
}

// OpenActivities returns the published activities that have not ended, with
// their items.
func (db *DB) OpenActivities(ctx context.Context, now time.Time) ([]flashgate.Activity, error) {
	var rows []activityRow
	if err := db.SelectContext(ctx, &rows,
		"SELECT "+activityColumns+" FROM seckill_activity WHERE published_at IS NOT NULL AND end_at > ? ORDER BY start_at, id LIMIT 1000", now.UTC()); err != nil {
		return nil, fmt.Errorf("list activities: %w", err)
	}
	out := make([]flashgate.Activity, 0, len(rows))
	for _, r := range rows {
		a := r.domain()
		if err := db.loadItems(ctx, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
