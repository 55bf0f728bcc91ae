package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
)

// TestRelayQueue: the relay finds the unsettled entries of a queue longer
// than one scan chunk, drops the settled ones from the queue, and returns
// each unsettled entry once a period.
func TestRelayQueue(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const n = 5000
	if _, err := s.Preload(ctx, 1, 0, n); err != nil {
		t.Fatal(err)
	}
	ids := flashgate.NewOrderIDs()
	var settled []string
	unsettled := map[string]bool{}
	for u := int64(1); u <= n; u++ {
		id := ids.New(1)
		if got := reserve(t, s, 1, 0, u, id); got.OrderID != "" || got.Left != n-u {
			t.Fatalf("buy %d: %+v", u, got)
		}
		if u == 10 || u == 2500 || u == n {
			unsettled[id] = true
		} else {
			settled = append(settled, id)
		}
	}
	if _, err := s.Settle(ctx, 1, 0, settled); err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("%s:{i1:0}:queue", s.Prefix())
	qlen := func() int64 {
		t.Helper()
		l, err := s.Client().Do(ctx, s.Client().B().Llen().Key(queue).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := qlen(); l != n {
		t.Fatalf("queue before the relay: %d entries, want %d", l, n)
	}
	// Nothing is due yet: the queue is left as it is.
	if got, err := s.Stale(ctx, 1, 0, time.Now().Add(-time.Minute), 10); err != nil || len(got) != 0 {
		t.Fatalf("relay before the cutoff: %d entries, %v", len(got), err)
	}
	if l := qlen(); l != n {
		t.Fatalf("queue after a pass with nothing due: %d entries", l)
	}
	stale := func(cutoff time.Time) map[string]bool {
		t.Helper()
		got, err := s.Stale(ctx, 1, 0, cutoff, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, w := range got {
			r, err := flashgate.ParseReservation(w)
			if err != nil {
				t.Fatal(err)
			}
			if out[r.OrderID] {
				t.Fatalf("order %s relayed twice in one pass", r.OrderID)
			}
			out[r.OrderID] = true
		}
		return out
	}
	if got := stale(time.Now().Add(time.Second)); fmt.Sprint(got) != fmt.Sprint(unsettled) {
		t.Fatalf("relayed %v, want %v", got, unsettled)
	}
	if l := qlen(); l != int64(len(unsettled)) {
		t.Fatalf("queue after the relay: %d entries, want the %d unsettled", l, len(unsettled))
	}
	// Relayed entries wait a full period, then come back.
	if got := stale(time.Now().Add(-time.Second)); len(got) != 0 {
		t.Fatalf("relayed again at once: %v", got)
	}
	if got := stale(time.Now().Add(time.Second)); fmt.Sprint(got) != fmt.Sprint(unsettled) {
		t.Fatalf("second period: relayed %v, want %v", got, unsettled)
	}
}

// TestRelayQueueLegacy: outbox entries that a gateway from before the relay
// queue recorded in the pending zset are relayed too, and settle clears them.
func TestRelayQueueLegacy(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	c := s.Client()
	r := flashgate.Reservation{OrderID: flashgate.NewOrderIDs().New(1), ItemID: 1, UserID: 7, Amount: 990, At: time.Now()}
	pending := fmt.Sprintf("%s:{i1:0}:pending", s.Prefix())
	outbox := fmt.Sprintf("%s:{i1:0}:outbox", s.Prefix())
	for _, cmd := range c.DoMulti(ctx,
		c.B().Hset().Key(outbox).FieldValue().FieldValue(r.OrderID, string(r.AppendWire(nil))).Build(),
		c.B().Zadd().Key(pending).ScoreMember().ScoreMember(float64(r.At.UnixMilli()), r.OrderID).Build()) {
		if err := cmd.Error(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Stale(ctx, 1, 0, time.Now().Add(time.Second), 10)
	if err != nil || len(got) != 1 || string(got[0]) != string(r.AppendWire(nil)) {
		t.Fatalf("legacy entry: %q %v", got, err)
	}
	if n, err := s.Settle(ctx, 1, 0, []string{r.OrderID}); err != nil || n != 1 {
		t.Fatalf("settle: %d %v", n, err)
	}
	if n, _ := c.Do(ctx, c.B().Exists().Key(pending).Build()).AsInt64(); n != 0 {
		t.Fatal("settle left the legacy pending entry")
	}
}

// TestRelayScriptRefusesAMovedHead: when another worker took the head
// between the LRANGE and the script, the script changes nothing.
func TestRelayScriptRefusesAMovedHead(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	c := s.Client()
	queue := fmt.Sprintf("%s:{i1:0}:queue", s.Prefix())
	if err := c.Do(ctx, c.B().Rpush().Key(queue).Element("1 a", "2 b", "3 c").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// The worker read "1 a", "2 b"; another took "1 a" meanwhile.
	if err := c.Do(ctx, c.B().Lpop().Key(queue).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if res := s.RelayTake(ctx, 1, 0, "9", "1 a", "2 b", "a", "b"); !rueidis.IsRedisNil(res.Error()) {
		t.Fatalf("script on a moved head: %v, want a nil reply", res.Error())
	}
	got, err := c.Do(ctx, c.B().Lrange().Key(queue).Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil || len(got) != 2 || got[0] != "2 b" {
		t.Fatalf("queue after the refused script: %q %v", got, err)
	}
}
