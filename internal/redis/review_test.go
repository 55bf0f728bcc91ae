package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
)

// TestSettleManyIDs settles a batch larger than Lua's unpack limit (about
// 8,000 values): the worker's batch setting allows 100,000.
func TestSettleManyIDs(t *testing.T) {
	const n = 12_000
	s := openLoaded(t, n)
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%06d", i)
		r := flashgate.Reservation{OrderID: ids[i], ItemID: 1, UserID: int64(i + 1), Amount: 990, At: time.Now()}
		if _, err := s.Reserve(ctx, 1, 0, r.UserID, r.OrderID, r.AppendWire(nil), r.At); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Settle(ctx, 1, 0, ids)
	if err != nil {
		t.Fatalf("settle %d ids: %v", n, err)
	}
	if got != n {
		t.Fatalf("settled %d entries, want %d", got, n)
	}
	left, err := s.OutboxIDs(ctx, 1, 0)
	if err != nil || len(left) != 0 {
		t.Fatalf("outbox after settle: %d entries, %v", len(left), err)
	}
	stale, _, err := s.Stale(ctx, 1, 0, 0, time.Now().Add(time.Hour), time.Second, 10)
	if err != nil || len(stale) != 0 {
		t.Fatalf("pending after settle: %d entries, %v", len(stale), err)
	}
}
