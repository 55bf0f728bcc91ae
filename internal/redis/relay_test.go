package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
)

const relayAfter = 5 * time.Second

// relayed walks shard 0 of item 1's outbox to the end as a worker's relay
// at now would, passes of limit entries, and counts the orders returned.
func relayed(t *testing.T, s *redis.Store, now time.Time, limit int) map[string]int {
	t.Helper()
	out := map[string]int{}
	var cursor uint64
	for pass := 0; ; pass++ {
		wires, next, err := s.Stale(context.Background(), 1, 0, cursor, now, relayAfter, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wires {
			r, err := flashgate.ParseReservation(w)
			if err != nil {
				t.Fatal(err)
			}
			out[r.OrderID]++
		}
		if next == 0 {
			return out
		}
		if pass > 1000 {
			t.Fatal("the walk does not end")
		}
		cursor = next
	}
}

// buyAt reserves n units of shard 0 of item 1 for users from..from+n-1 with
// order ids made at t, and returns the ids.
func buyAt(t *testing.T, s *redis.Store, from int64, n int, at time.Time) []string {
	t.Helper()
	ids := flashgate.NewOrderIDs()
	out := make([]string, n)
	for i := range out {
		out[i] = string(ids.Append(nil, 1, at))
		if got := reserve(t, s, 1, 0, from+int64(i), out[i]); got.Outcome != redis.Reserved || got.OrderID != "" {
			t.Fatalf("buy %d: %+v", i, got)
		}
	}
	return out
}

// TestRelayOutbox: the relay returns an entry reserved and never settled
// once it is due and not before, then not again before another full period;
// it never returns a settled entry; and it walks an outbox many scan steps
// long, in passes of a bounded size that go on where the last stopped.
func TestRelayOutbox(t *testing.T) {
	s := openLoaded(t, 10000)
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Millisecond)
	ids := buyAt(t, s, 1, 1500, t0)
	unsettled := map[string]bool{}
	var settled []string
	for i, id := range ids {
		if i%3 == 0 {
			unsettled[id] = true
		} else {
			settled = append(settled, id)
		}
	}
	if _, err := s.Settle(ctx, 1, 0, settled); err != nil {
		t.Fatal(err)
	}
	// 500 entries left: five scan steps at least.
	if got := relayed(t, s, t0.Add(relayAfter), 1000); len(got) != 0 {
		t.Fatalf("relayed %d entries a period after they were made, before they are due", len(got))
	}
	t1 := t0.Add(relayAfter + time.Millisecond)
	got := relayed(t, s, t1, 100) // passes of about 100 entries
	if len(got) != len(unsettled) {
		t.Fatalf("relayed %d entries once due, want the %d unsettled", len(got), len(unsettled))
	}
	for id, n := range got {
		if !unsettled[id] || n != 1 {
			t.Fatalf("order %s relayed %d times (unsettled: %v)", id, n, unsettled[id])
		}
	}
	if again := relayed(t, s, t1.Add(relayAfter-time.Millisecond), 1000); len(again) != 0 {
		t.Fatalf("relayed %d entries again within a period", len(again))
	}
	if again := relayed(t, s, t1.Add(relayAfter+time.Millisecond), 1000); len(again) != len(unsettled) {
		t.Fatalf("relayed %d entries a period later, want %d", len(again), len(unsettled))
	}
	// Settling drops the relay's stamps too.
	var rest []string
	for id := range unsettled {
		rest = append(rest, id)
	}
	if n, err := s.Settle(ctx, 1, 0, rest); err != nil || n != int64(len(rest)) {
		t.Fatalf("settle: %d %v", n, err)
	}
	c := s.Client()
	if n, err := c.Do(ctx, c.B().Exists().Key(s.Prefix()+":{i1:0}:relayed").Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("relay stamps after every entry settled: %d %v", n, err)
	}
	if got := relayed(t, s, t1.Add(time.Hour), 1000); len(got) != 0 {
		t.Fatalf("relayed %d settled entries", len(got))
	}
}

// TestRelayStampsExpire: the hash of relay stamps expires a period after
// its last write, so stamps left by an old worker's settle cannot pile up.
func TestRelayStampsExpire(t *testing.T) {
	s := openLoaded(t, 10)
	ctx := context.Background()
	now := time.Now()
	buyAt(t, s, 1, 2, now.Add(-time.Minute))
	if got := relayed(t, s, now, 10); len(got) != 2 {
		t.Fatalf("relayed %d, want 2", len(got))
	}
	c := s.Client()
	ttl, err := c.Do(ctx, c.B().Pttl().Key(s.Prefix()+":{i1:0}:relayed").Build()).AsInt64()
	if err != nil || ttl <= 0 || ttl > relayAfter.Milliseconds() {
		t.Fatalf("relay stamps' ttl: %d ms %v, want at most %v", ttl, err, relayAfter)
	}
}

// TestRelayConcurrentPasses: workers walking the same outbox side by side
// return each due entry once between them, and miss none.
func TestRelayConcurrentPasses(t *testing.T) {
	s := openLoaded(t, 10000)
	now := time.Now()
	ids := buyAt(t, s, 1, 1200, now.Add(-time.Minute))
	var mu sync.Mutex
	total := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			got := relayed(t, s, now, 50+w*100)
			mu.Lock()
			defer mu.Unlock()
			for id, n := range got {
				total[id] += n
			}
		})
	}
	wg.Wait()
	if len(total) != len(ids) {
		t.Fatalf("%d entries relayed, want %d", len(total), len(ids))
	}
	for id, n := range total {
		if n != 1 {
			t.Fatalf("order %s relayed %d times in one period", id, n)
		}
	}
}

// TestRelayForeignIDs: an outbox entry whose id does not carry a creation
// time of flashgate's, or one more than a period ahead, is due at once.
func TestRelayForeignIDs(t *testing.T) {
	s := openLoaded(t, 10)
	now := time.Now()
	ahead := string(flashgate.NewOrderIDs().Append(nil, 1, now.Add(time.Hour)))
	fresh := string(flashgate.NewOrderIDs().Append(nil, 1, now))
	for u, id := range []string{"o1", "0123456789", ahead, fresh} {
		if got := reserve(t, s, 1, 0, int64(u+1), id); got.Outcome != redis.Reserved {
			t.Fatalf("buy %s: %+v", id, got)
		}
	}
	got := relayed(t, s, now, 10)
	if want := map[string]int{"o1": 1, "0123456789": 1, ahead: 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("relayed %v, want %v", got, want)
	}
}

// TestRelayDropsLegacyRecords: the queue and the pending zset of gateways
// before 2026-11-30 are dropped by the relay, and the entries such gateways
// wrote (in the outbox, as every entry) are relayed from the outbox.
func TestRelayDropsLegacyRecords(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	c := s.Client()
	r := flashgate.Reservation{OrderID: string(flashgate.NewOrderIDs().Append(nil, 1, time.Now().Add(-time.Minute))), ItemID: 1, UserID: 7, Amount: 990, At: time.Now()}
	queue := s.Prefix() + ":{i1:0}:queue"
	pending := s.Prefix() + ":{i1:0}:pending"
	for _, cmd := range c.DoMulti(ctx,
		c.B().Hset().Key(s.Prefix()+":{i1:0}:outbox").FieldValue().FieldValue(r.OrderID, string(r.AppendWire(nil))).Build(),
		c.B().Rpush().Key(queue).Element("1 "+r.OrderID, "2 gone").Build(),
		c.B().Zadd().Key(pending).ScoreMember().ScoreMember(1, r.OrderID).Build()) {
		if err := cmd.Error(); err != nil {
			t.Fatal(err)
		}
	}
	if got := relayed(t, s, time.Now(), 10); len(got) != 1 || got[r.OrderID] != 1 {
		t.Fatalf("relayed %v, want %s", got, r.OrderID)
	}
	if n, err := c.Do(ctx, c.B().Exists().Key(queue, pending).Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("legacy keys after a relay pass: %d %v", n, err)
	}
}

// TestRelayEntryOfACall: the relay returns the entry of a call whole, as
// one value holding every reservation of the call, due by its first order's
// time; settling its field removes all of them.
func TestRelayEntryOfACall(t *testing.T) {
	s, plain, c := openGatedLoaded(t, 1, 10)
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Millisecond)
	ids := flashgate.NewOrderIDs()
	buys := make([]buy, 4) // a call of one, then a call of three
	for i := range buys {
		buys[i] = buy{user: int64(i + 1), order: string(ids.Append(nil, 1, t0))}
	}
	reserveQueued(t, s, c, 1, buys)
	if got := relayed(t, plain, t0.Add(relayAfter), 1000); len(got) != 0 {
		t.Fatalf("relayed %v before due", got)
	}
	var values [][]byte
	for cursor := uint64(0); ; {
		vs, next, err := plain.Stale(ctx, 1, 0, cursor, t0.Add(relayAfter+time.Millisecond), relayAfter, 1000)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, vs...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	var call []flashgate.Reservation
	for _, v := range values {
		rs, err := flashgate.ParseEntry(v)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 3 {
			call = rs
		}
	}
	if len(values) != 2 || len(call) != 3 || call[0].OrderID != buys[1].order || call[2].OrderID != buys[3].order {
		t.Fatalf("relayed %q, want the call of one and the call of three", values)
	}
	if n, err := plain.Settle(ctx, 1, 0, []string{flashgate.EntryField(call)}); err != nil || n != 1 {
		t.Fatalf("settle the call's entry: %d %v", n, err)
	}
	if ids, err := plain.OutboxIDs(ctx, 1, 0); err != nil || len(ids) != 1 || ids[0] != buys[0].order {
		t.Fatalf("outbox after settling the call: %v %v", ids, err)
	}
}
