package test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFleet runs the roles as separate processes would: two gateways, two
// workers and an admin sharing one Redis prefix, one database and one
// broker. Buys spread over both gateways; every unit sells once and every
// accepted buy becomes a row.
func TestFleet(t *testing.T) {
	// The admin helpers of stack talk to the admin; buys go to either gateway.
	s := fleetOf(roles{gateways: 2, workers: 2})(t, nil)
	const stock, users = 60, 400
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": stock, "shards": 8})

	var mu sync.Mutex
	var retried atomic.Int64
	accepted := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for u := int64(1); u <= users; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := s.token(u)
			url := fmt.Sprintf("%s/api/v1/seckill/%d", s.gws[u%2], item)
			// A 503 is allowed (contract §4: nothing taken, or taken with
			// its order): the client tries again, as a shopper's would,
			// and a unit taken by the failed try comes back duplicate.
			// Under -race on a loaded box the 400 buys at once can outlast
			// the gateway's I/O deadline.
			a := s.do("POST", url, tok, nil)
			for try := 1; a.Status == 503 && try < 20; try++ {
				retried.Add(1)
				time.Sleep(time.Duration(try*50) * time.Millisecond)
				a = s.do("POST", url, tok, nil)
				if a.code() == "duplicate" {
					a.Body["code"] = "ok"
				}
			}
			switch a.code() {
			case "ok":
				mu.Lock()
				accepted[u] = a.str("order_id")
				mu.Unlock()
			case "sold_out":
			default:
				errs <- fmt.Errorf("user %d: %d %s", u, a.Status, a.Raw)
			}
		}()
	}
	wg.Wait()
	if n := retried.Load(); n > 0 {
		t.Logf("%d buys answered 503 and were tried again", n)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(accepted) != stock {
		t.Fatalf("accepted %d, want %d", len(accepted), stock)
	}
	st := s.settle(item)
	if st.Unpaid != stock || st.Remaining != 0 {
		t.Fatalf("stats: %+v", st)
	}
	got := rows(t, s, item)
	for user, order := range accepted {
		if got[order] != user {
			t.Fatalf("order %s of user %d: row has %d", order, user, got[order])
		}
	}
}
