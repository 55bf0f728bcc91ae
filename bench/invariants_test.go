package bench_test

import (
	"testing"

	"github.com/flashgate/flashgate/bench"
)

func TestCheckInvariants(t *testing.T) {
	item := int64(7)
	stats := func(stock, reserved, remaining int64) []bench.ItemStats {
		return []bench.ItemStats{{ItemID: item, Stock: stock, Reserved: reserved, Remaining: remaining}}
	}
	acc := func(user int64, id string) bench.Acceptance {
		return bench.Acceptance{ItemID: item, UserID: user, OrderID: id}
	}
	row := func(id string, user int64, status string) bench.Order {
		return bench.Order{OrderID: id, ItemID: item, UserID: user, Status: status}
	}
	cases := []struct {
		name     string
		stats    []bench.ItemStats
		accepted []bench.Acceptance
		orders   []bench.Order
		want     bench.Invariants // only the counts compared below
		ok       bool
	}{
		{
			name:     "all good",
			stats:    stats(3, 0, 1),
			accepted: []bench.Acceptance{acc(1, "a"), acc(2, "b")},
			orders:   []bench.Order{row("a", 1, "unpaid"), row("b", 2, "paid")},
			want:     bench.Invariants{Stock: 3, Accepted: 2, Orders: 2},
			ok:       true,
		},
		{
			name:     "a cancelled order frees the user",
			stats:    stats(3, 0, 1),
			accepted: []bench.Acceptance{acc(1, "a"), acc(1, "c")},
			orders:   []bench.Order{row("a", 1, "cancelled"), row("c", 1, "unpaid"), row("d", 2, "paid")},
			want:     bench.Invariants{Stock: 3, Accepted: 2, Orders: 2},
			ok:       true,
		},
		{
			name:     "more live rows than stock",
			stats:    stats(2, 0, -1),
			accepted: []bench.Acceptance{acc(1, "a"), acc(2, "b"), acc(3, "c")},
			orders:   []bench.Order{row("a", 1, "unpaid"), row("b", 2, "unpaid"), row("c", 3, "paid")},
			want:     bench.Invariants{Stock: 2, Accepted: 3, Orders: 3, Oversold: 1},
		},
		{
			name:     "more 202s than stock, rows lost",
			stats:    stats(1, 0, 0),
			accepted: []bench.Acceptance{acc(1, "a"), acc(2, "b"), acc(3, "c")},
			orders:   []bench.Order{row("a", 1, "unpaid")},
			want:     bench.Invariants{Stock: 1, Accepted: 3, Orders: 1, Oversold: 2, Lost: 2},
		},
		{
			name:     "two live orders for one user",
			stats:    stats(5, 0, 3),
			accepted: []bench.Acceptance{acc(1, "a")},
			orders:   []bench.Order{row("a", 1, "unpaid"), row("b", 1, "paid")},
			want:     bench.Invariants{Stock: 5, Accepted: 1, Orders: 2, DuplicateUsers: 1},
		},
		{
			name:     "two order ids given to one user",
			stats:    stats(5, 0, 4),
			accepted: []bench.Acceptance{acc(1, "a"), acc(1, "b")},
			orders:   []bench.Order{row("a", 1, "unpaid")},
			want:     bench.Invariants{Stock: 5, Accepted: 2, Orders: 1, DuplicateUsers: 1, Lost: 1},
		},
		{
			name:     "accepted order with another user's row",
			stats:    stats(5, 0, 4),
			accepted: []bench.Acceptance{acc(1, "a")},
			orders:   []bench.Order{row("a", 2, "unpaid")},
			want:     bench.Invariants{Stock: 5, Accepted: 1, Orders: 1, Lost: 1},
		},
		{
			name:     "202 without an order id",
			stats:    stats(5, 0, 4),
			accepted: []bench.Acceptance{acc(1, "")},
			orders:   []bench.Order{row("x", 1, "unpaid")},
			want:     bench.Invariants{Stock: 5, Accepted: 1, Orders: 1, Lost: 1},
		},
		{
			name:   "units unaccounted for",
			stats:  stats(10, 1, 5),
			orders: []bench.Order{row("a", 1, "unpaid")},
			want:   bench.Invariants{Stock: 10, Orders: 1, Unbalanced: 3},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := bench.CheckInvariants(c.stats, c.accepted, c.orders)
			if !got.Verified || got.Stock != c.want.Stock || got.Accepted != c.want.Accepted || got.Orders != c.want.Orders ||
				got.Oversold != c.want.Oversold || got.DuplicateUsers != c.want.DuplicateUsers || got.Lost != c.want.Lost ||
				got.Unbalanced != c.want.Unbalanced {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
			if got.OK() != c.ok {
				t.Errorf("OK() = %v, want %v; broken %q", got.OK(), c.ok, got.Broken)
			}
		})
	}
}

func TestCheckInvariantsWithoutOrders(t *testing.T) {
	stats := []bench.ItemStats{{ItemID: 1, Stock: 4, Orders: 5, Cancelled: 1, Remaining: 0}}
	accepted := []bench.Acceptance{{ItemID: 1, UserID: 9, OrderID: "a"}, {ItemID: 1, UserID: 9, OrderID: "b"}}
	got := bench.CheckInvariants(stats, accepted, nil)
	if got.Verified || got.Orders != 4 || got.DuplicateUsers != 1 || got.Lost != 0 || got.OK() {
		t.Errorf("got %+v", got)
	}
}

func TestCheckInvariantsAcceptedElsewhere(t *testing.T) {
	stats := []bench.ItemStats{{ItemID: 1, Stock: 1, Remaining: 1}}
	accepted := []bench.Acceptance{{ItemID: 2, UserID: 9, OrderID: "a"}}
	got := bench.CheckInvariants(stats, accepted, []bench.Order{})
	if got.OK() {
		t.Errorf("a 202 for an item not on sale passed: %+v", got)
	}
}
