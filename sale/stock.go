package sale

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
)

// Adjusted is the answer to a stock adjustment.
type Adjusted struct {
	Stock     int64 `json:"stock"`
	Remaining int64 `json:"remaining"`
}

// Adjust changes an item's stock by delta (contract §11). Before publish
// it is a change of MySQL's stock. While published, see docs/design.md
// "Stock adjustments": an addition raises MySQL first and then credits the
// shards; a withdrawal takes untaken units from the shards first, one
// atomic script per shard, and then lowers MySQL by what it got. Both are
// logged in stock_adjustment and finished by the worker's reconciler if
// this process dies midway.
func (o *Ops) Adjust(ctx context.Context, item int64, delta int64) (Adjusted, error) {
	adj, stock, err := o.db.BeginAdjust(ctx, item, delta, o.Now())
	if err != nil {
		return Adjusted{}, err
	}
	if adj == nil { // not published: there is nothing in Redis yet
		return Adjusted{Stock: stock, Remaining: stock}, nil
	}
	if stock, err = o.applyAdjust(ctx, *adj); err != nil {
		o.log.Warn("stock adjustment left pending; the reconciler finishes it", "item", item, "adjustment", adj.ID, "err", err)
		return Adjusted{}, unavailable("stock adjustment %d of item %d is logged but not finished; the fleet finishes it within seconds (do not repeat it)", adj.ID, item)
	}
	if err := o.putStock(ctx, item); err != nil {
		o.log.Warn("write item stock", "item", item, "err", err)
	}
	left, err := o.store.RemainingNow(ctx, item, adj.Shards)
	if err != nil {
		return Adjusted{}, unavailable("redis unavailable")
	}
	return Adjusted{Stock: stock, Remaining: left}, nil
}

// applyAdjust brings a logged adjustment to Redis and finishes it in MySQL.
// Every step is idempotent per adjustment id, so running it twice, or from
// two processes at once, changes the stock once.
func (o *Ops) applyAdjust(ctx context.Context, adj mysql.Adjustment) (int64, error) {
	id := "adj" + strconv.FormatInt(adj.ID, 10)
	now := o.Now()
	var taken int64
	if adj.Delta > 0 {
		for sh := 0; sh < adj.Shards; sh++ {
			units := redis.ShardShare(adj.Applied, adj.Shards, sh)
			if units == 0 {
				continue
			}
			if _, err := o.store.Credit(ctx, adj.ItemID, sh, id, units, now); err != nil {
				return 0, err
			}
		}
		// The new units sell at once: clear the flag that makes gateways
		// answer sold_out from memory.
		if err := o.store.SetSoldOut(ctx, adj.ItemID, false); err != nil {
			return 0, err
		}
	} else {
		// Shard by shard, each shard's want is what the earlier shards did
		// not give: the logs of earlier shards never change, so whoever
		// runs this computes the same wants and the total never exceeds
		// -delta.
		want := -adj.Delta
		for sh := 0; sh < adj.Shards && taken < want; sh++ {
			k, err := o.store.Withdraw(ctx, adj.ItemID, sh, id, want-taken)
			if err != nil {
				return 0, err
			}
			taken += k
		}
	}
	stock, err := o.db.FinishAdjust(ctx, adj.ID, taken)
	if err != nil {
		return 0, fmt.Errorf("finish adjustment %d: %w", adj.ID, err)
	}
	return stock, nil
}

// FinishAdjustments finishes adjustments left pending by a process that
// died or failed midway (the worker's reconciler calls it every tick).
func (o *Ops) FinishAdjustments(ctx context.Context) error {
	pending, err := o.db.PendingAdjustments(ctx, o.Now().Add(-5*time.Second), 100)
	if err != nil {
		return err
	}
	for _, adj := range pending {
		if _, err := o.applyAdjust(ctx, adj); err != nil {
			return err
		}
		if err := o.putStock(ctx, adj.ItemID); err != nil {
			return err
		}
		o.log.Warn("finished an interrupted stock adjustment", "item", adj.ItemID, "adjustment", adj.ID, "delta", adj.Delta)
	}
	return nil
}

// putStock rewrites an item's metadata (which carries its stock) under its
// activity's row lock, so that it never puts back a window that a close
// replaced meanwhile.
func (o *Ops) putStock(ctx context.Context, item int64) error {
	it, err := o.db.Item(ctx, item)
	if err != nil {
		return err
	}
	return o.db.WithActivity(ctx, it.ActivityID, func(ctx context.Context, a *flashgate.Activity) error {
		if a.PublishedAt == nil || a.ArchivedAt != nil {
			return nil
		}
		for i := range a.Items {
			if a.Items[i].ID == item {
				return o.store.PutItem(ctx, &a.Items[i])
			}
		}
		return nil
	})
}
