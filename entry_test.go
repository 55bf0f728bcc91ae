package flashgate_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
)

// TestEntry: an outbox entry's value parses back to its reservations in
// order, its field names their ids, and a bad line fails the whole entry.
func TestEntry(t *testing.T) {
	at := time.UnixMilli(1764460800123).UTC()
	ids := flashgate.NewOrderIDs()
	rs := []flashgate.Reservation{
		{OrderID: ids.New(7), ItemID: 7, UserID: 11, Amount: 990, Shard: 3, At: at},
		{OrderID: ids.New(7), ItemID: 7, UserID: 12, Amount: 990, Shard: 3, At: at.Add(time.Millisecond)},
		{OrderID: ids.New(7), ItemID: 7, UserID: 13, Amount: 990, Shard: 3, At: at.Add(2 * time.Millisecond)},
	}
	for n := 1; n <= len(rs); n++ {
		var wires []string
		for i := range rs[:n] {
			wires = append(wires, string(rs[i].AppendWire(nil)))
		}
		value := strings.Join(wires, "\n") // as reserve.lua joins them
		got, err := flashgate.ParseEntry([]byte(value))
		if err != nil || !reflect.DeepEqual(got, rs[:n]) {
			t.Fatalf("entry of %d: %+v %v", n, got, err)
		}
		field := flashgate.EntryField(got)
		if ids := flashgate.EntryIDs(field); len(ids) != n || ids[n-1] != rs[n-1].OrderID || flashgate.EntryFirstID(field) != rs[0].OrderID {
			t.Fatalf("field %q of %d", field, n)
		}
	}
	if got := flashgate.EntryField(rs[:1]); got != rs[0].OrderID {
		t.Fatalf("an entry of one is named by its id (as before entries held calls): %q", got)
	}
	good := string(rs[0].AppendWire(nil))
	for _, bad := range []string{"", good + "\n", good + "\nr1|x", "\n" + good} {
		if got, err := flashgate.ParseEntry([]byte(bad)); err == nil {
			t.Errorf("flashgate.ParseEntry(%q) = %+v, want an error", bad, got)
		}
	}
}

// EntryKey: the reservations one process makes within a window of 128 ms
// share a key, whatever their users; another window or another process has
// another; a foreign id is its own key.
func TestEntryKey(t *testing.T) {
	ids := flashgate.NewOrderIDs()
	at := time.UnixMilli(1_700_000_000_000 &^ 127) // a window's first millisecond
	key := func(g *flashgate.OrderIDs, t time.Time, item int64) string {
		return string(flashgate.EntryKey(string(g.Append(nil, item, t))))
	}
	first := key(ids, at, 1)
	for _, ms := range []int64{0, 1, 64, 127} {
		if k := key(ids, at.Add(time.Duration(ms)*time.Millisecond), 9); k != first {
			t.Errorf("%d ms into the window: key %q, want %q", ms, k, first)
		}
	}
	if k := key(ids, at.Add(128*time.Millisecond), 1); k == first {
		t.Errorf("next window: key %q, the same as the first's", k)
	}
	if k := key(ids, at.Add(-time.Millisecond), 1); k == first {
		t.Errorf("window before: key %q, the same as the first's", k)
	}
	other := flashgate.NewOrderIDs()
	if k := key(other, at, 1); k == first {
		t.Errorf("another process: key %q, the same as the first's", k)
	}
	if k := string(flashgate.EntryKey("not-an-order")); k != "not-an-order" {
		t.Errorf("foreign id: key %q", k)
	}
}
