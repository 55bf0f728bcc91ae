package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrInvariant is wrapped by the error Main returns when a run broke one of
// the contract's invariants (CONTRACT §7) or a scenario's promise.
var ErrInvariant = errors.New("invariant broken")

// Order statuses of seckill_order that hold a unit.
const (
	StatusUnpaid = "unpaid"
	StatusPaid   = "paid"
)

// Order is one row of seckill_order, as far as the invariants need it.
type Order struct {
	OrderID string `db:"order_id"`
	ItemID  int64  `db:"item_id"`
	UserID  int64  `db:"user_id"`
	Status  string `db:"status"`
}

// live reports whether the order holds a unit.
func (o *Order) live() bool { return o.Status == StatusUnpaid || o.Status == StatusPaid }

// OrderSource reads the orders the system holds for some items. MySQL is
// the real one; tests pass their own.
type OrderSource interface {
	Orders(ctx context.Context, itemIDs []int64) ([]Order, error)
}

// Acceptance is one 202 the gateway gave: a unit it promised to a user.
type Acceptance struct {
	ItemID  int64  `json:"item_id"`
	UserID  int64  `json:"user_id"`
	OrderID string `json:"order_id"`
}

// Invariants is the check of CONTRACT §7 after a run, summed over the
// items checked.
type Invariants struct {
	// Verified is true when the orders were read from seckill_order; false
	// when only the admin stats were available, so lost could not be
	// checked and duplicate_users comes from the answers alone.
	Verified bool `json:"verified"`
	// Stock is the units put on sale.
	Stock int64 `json:"stock"`
	// Accepted is the 202s the gateway gave during the run (warmup and
	// pre-sale included).
	Accepted int64 `json:"accepted"`
	// Orders is the live orders (unpaid or paid).
	Orders int64 `json:"orders"`
	// Reserved and Remaining are the admin stats after the drain.
	Reserved  int64 `json:"reserved"`
	Remaining int64 `json:"remaining"`
	// Oversold is the units sold beyond the stock: live orders, or 202s,
	// over stock, whichever is more.
	Oversold int64 `json:"oversold"`
	// DuplicateUsers is the users holding two live orders for one item,
	// or given two different order ids for one item.
	DuplicateUsers int64 `json:"duplicate_users"`
	// Lost is the 202s whose order id has no row with the right item and
	// user, or that came without an order id.
	Lost int64 `json:"lost"`
	// Unbalanced is how far stock is from orders + reserved + remaining,
	// summed over the items.
	Unbalanced int64 `json:"unbalanced"`
	// Items has the same counts per item.
	Items []ItemInvariants `json:"items,omitempty"`
	// Broken describes each broken invariant; empty when all hold.
	Broken []string `json:"broken,omitempty"`
	// LostSample lists a few of the lost order ids.
	LostSample []string `json:"lost_sample,omitempty"`
}

// ItemInvariants is the check of one item.
type ItemInvariants struct {
	ItemID         int64 `json:"item_id"`
	Stock          int64 `json:"stock"`
	Accepted       int64 `json:"accepted"`
	Orders         int64 `json:"orders"`
	Reserved       int64 `json:"reserved"`
	Remaining      int64 `json:"remaining"`
	Oversold       int64 `json:"oversold"`
	DuplicateUsers int64 `json:"duplicate_users"`
	Lost           int64 `json:"lost"`
	Unbalanced     int64 `json:"unbalanced"`
}

// OK reports whether every invariant holds.
func (inv *Invariants) OK() bool { return len(inv.Broken) == 0 }

// CheckInvariants checks the items' stats after the drain, the 202s the run
// got and the orders the system holds. With orders nil (no MySQL), the live
// orders come from the stats (orders minus cancelled) and lost is not
// checked.
func CheckInvariants(stats []ItemStats, accepted []Acceptance, orders []Order) Invariants {
	inv := Invariants{Verified: orders != nil}
	type key struct {
		item, user int64
	}
	byID := make(map[string]*Order, len(orders))
	liveByUser := map[key]int{}
	liveByItem := map[int64]int64{}
	for i := range orders {
		o := &orders[i]
		byID[o.OrderID] = o
		if o.live() {
			liveByUser[key{o.ItemID, o.UserID}]++
			liveByItem[o.ItemID]++
		}
	}
	// Users given two different order ids for one item, both still held.
	given := map[key]string{}
	twice := map[key]bool{}
	acceptedByItem := map[int64]int64{}
	lostByItem := map[int64]int64{}
	for _, a := range accepted {
		acceptedByItem[a.ItemID]++
		k := key{a.ItemID, a.UserID}
		// An order since cancelled or refunded freed its user to buy again.
		if o := byID[a.OrderID]; o == nil || o.live() {
			if prev, ok := given[k]; ok && prev != a.OrderID {
				twice[k] = true
			}
			given[k] = a.OrderID
		}
		if !inv.Verified && a.OrderID != "" {
			continue
		}
		if o := byID[a.OrderID]; a.OrderID == "" || o == nil || o.ItemID != a.ItemID || o.UserID != a.UserID {
			lostByItem[a.ItemID]++
			if len(inv.LostSample) < 10 {
				id := a.OrderID
				if id == "" {
					id = "(202 without order_id)"
				}
				inv.LostSample = append(inv.LostSample, id)
			}
		}
	}
	dupByItem := map[int64]int64{}
	for k, n := range liveByUser {
		if n > 1 {
			dupByItem[k.item]++
			twice[k] = false // counted once
		}
	}
	for k, yes := range twice {
		if yes {
			dupByItem[k.item]++
		}
	}

	for _, st := range stats {
		it := ItemInvariants{
			ItemID:         st.ItemID,
			Stock:          st.Stock,
			Accepted:       acceptedByItem[st.ItemID],
			Reserved:       st.Reserved,
			Remaining:      st.Remaining,
			DuplicateUsers: dupByItem[st.ItemID],
			Lost:           lostByItem[st.ItemID],
		}
		if inv.Verified {
			it.Orders = liveByItem[st.ItemID]
		} else {
			it.Orders = st.Orders - st.Cancelled
		}
		it.Oversold = max(0, it.Orders-it.Stock, it.Accepted-it.Stock)
		if d := it.Stock - it.Orders - it.Reserved - it.Remaining; d != 0 {
			it.Unbalanced = max(d, -d)
		}
		inv.Items = append(inv.Items, it)
		inv.Stock += it.Stock
		inv.Accepted += it.Accepted
		inv.Orders += it.Orders
		inv.Reserved += it.Reserved
		inv.Remaining += it.Remaining
		inv.Oversold += it.Oversold
		inv.DuplicateUsers += it.DuplicateUsers
		inv.Lost += it.Lost
		inv.Unbalanced += it.Unbalanced

		if it.Oversold > 0 {
			inv.Broken = append(inv.Broken, fmt.Sprintf("item %d oversold by %d: stock %d, live orders %d, accepted %d", it.ItemID, it.Oversold, it.Stock, it.Orders, it.Accepted))
		}
		if it.Unbalanced > 0 {
			inv.Broken = append(inv.Broken, fmt.Sprintf("item %d: stock %d != orders %d + reserved %d + remaining %d", it.ItemID, it.Stock, it.Orders, it.Reserved, it.Remaining))
		}
		if it.DuplicateUsers > 0 {
			inv.Broken = append(inv.Broken, fmt.Sprintf("item %d: %d users hold two live orders", it.ItemID, it.DuplicateUsers))
		}
		if it.Lost > 0 {
			inv.Broken = append(inv.Broken, fmt.Sprintf("item %d: %d accepted orders lost", it.ItemID, it.Lost))
		}
	}
	// 202s for items that were not checked are lost from the report's view.
	for _, item := range slices.Sorted(maps.Keys(acceptedByItem)) {
		if !slices.ContainsFunc(stats, func(s ItemStats) bool { return s.ItemID == item }) {
			inv.Broken = append(inv.Broken, fmt.Sprintf("item %d: %d accepted buys for an item not on sale", item, acceptedByItem[item]))
		}
	}
	if len(inv.Items) < 2 {
		inv.Items = nil // the totals say it all
	}
	return inv
}
