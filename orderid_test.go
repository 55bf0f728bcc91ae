package flashgate_test

import (
	"testing"
	"time"

	"github.com/flashgate/flashgate"
)

// TestOrderIDsBefore: ids created before t sort before OrderIDsBefore(t),
// those created at t or later do not, whatever the process id and counter.
func TestOrderIDsBefore(t *testing.T) {
	base := time.UnixMilli(1_795_000_000_123)
	for _, at := range []time.Time{base, time.UnixMilli(0), time.UnixMilli(1<<48 - 1), time.UnixMilli(31), time.UnixMilli(32)} {
		cut := flashgate.OrderIDsBefore(at)
		if len(cut) != 10 {
			t.Fatalf("OrderIDsBefore(%d) = %q, want 10 characters", at.UnixMilli(), cut)
		}
		for i := 0; i < 50; i++ { // fresh process ids and counters
			ids := flashgate.NewOrderIDs()
			for _, d := range []time.Duration{-time.Hour, -time.Second, -time.Millisecond, 0, time.Millisecond, time.Hour} {
				ms := at.Add(d).UnixMilli()
				if ms < 0 || ms >= 1<<48 {
					continue
				}
				id := string(ids.Append(nil, 42, time.UnixMilli(ms)))
				if before := id < cut; before != (d < 0) {
					t.Fatalf("id %s made %v from %s: sorts before %s = %v", id, d, at.Format(time.RFC3339Nano), cut, before)
				}
				if id[:10] != flashgate.OrderIDsBefore(time.UnixMilli(ms)) {
					t.Fatalf("id %s: time part differs from %s", id, flashgate.OrderIDsBefore(time.UnixMilli(ms)))
				}
			}
		}
	}
}

// TestOrderIDMilli reads back the millisecond Append wrote, and refuses ids
// that are not ours or whose time part is not Crockford base32.
func TestOrderIDMilli(t *testing.T) {
	ids := flashgate.NewOrderIDs()
	for _, ms := range []int64{0, 31, 32, 1_795_000_000_123, 1<<48 - 1} {
		id := string(ids.Append(nil, 42, time.UnixMilli(ms)))
		if got, ok := flashgate.OrderIDMilli(id); !ok || got != ms {
			t.Errorf("OrderIDMilli(%s) = %d, %v; want %d", id, got, ok, ms)
		}
	}
	for _, id := range []string{"o1", "0 low", "01JDQ0000U000000000000000A-42", "81JDQ00000000000000000000A-42", "01JDQ00000000000000000000A"} {
		if ms, ok := flashgate.OrderIDMilli(id); ok {
			t.Errorf("OrderIDMilli(%q) = %d, true; want false", id, ms)
		}
	}
}

// TestOrderItem reads back the item id Append wrote, and refuses an item
// part Append would not write: a sign, a leading zero, zero, anything not a
// digit, a number past int64.
func TestOrderItem(t *testing.T) {
	ids := flashgate.NewOrderIDs()
	for _, item := range []int64{1, 9, 10, 42, 1<<63 - 1} {
		id := string(ids.Append(nil, item, time.Now()))
		if got, ok := flashgate.OrderItem(id); !ok || got != item {
			t.Errorf("OrderItem(%s) = %d, %v; want %d", id, got, ok, item)
		}
	}
	base := "01JDQ00000000000000000000A-"
	for _, tail := range []string{"0", "042", "+42", "-42", "4 2", "42x", "9223372036854775808", ""} {
		if v, ok := flashgate.OrderItem(base + tail); ok {
			t.Errorf("OrderItem(%q) = %d, true; want false", base+tail, v)
		}
	}
}
