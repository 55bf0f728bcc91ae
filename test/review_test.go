package test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestRedisFull: when Redis is full (maxmemory reached, noeviction) and a
// gateway must refill an item's state (here after its connections were
// dropped, which empties its client-side cache), sold-out and duplicate
// answers keep coming from reads, and /readyz says what is wrong.
func TestRedisFull(t *testing.T) {
	addr := testenv.StartRedisServer(t, nil, "maxmemory-policy noeviction").Addr
	s := start(t, func(c *config.Config) { c.RedisAddrs = []string{addr} })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 2, "shards": 1})
	order := s.buy(item, s.token(1)).str("order_id")
	if a := s.buy(item, s.token(2)); a.Status != 202 {
		t.Fatalf("buy: %s", a.Raw)
	}
	if a := s.buy(item, s.token(3)); a.Status != 410 {
		t.Fatalf("buy of a sold-out item: %d %s", a.Status, a.Raw)
	}
	s.settle(item)

	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, cmd := range []rueidis.Completed{
		c.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", "1").Build(),
		c.B().ClientKill().TypeNormal().Build(),
	} {
		if err := c.Do(ctx, cmd).Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.Fatal(err)
		}
	}
	if err := c.Do(ctx, c.B().Set().Key("probe").Value("x").Build()).Error(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("redis should refuse writes now: %v", err)
	}

	testenv.Eventually(t, 5*time.Second, func() error {
		if a := s.buy(item, s.token(1)); a.Status != 409 || a.str("order_id") != order {
			return fmt.Errorf("holder's retry while Redis is full: %d %s", a.Status, a.Raw)
		}
		return nil
	})
	if a := s.buy(item, s.token(4)); a.Status != 410 {
		t.Fatalf("buy of a sold-out item while Redis is full: %d %s", a.Status, a.Raw)
	}
	if a := s.do("GET", s.gw+"/readyz", "", nil); a.Status != 503 || !strings.Contains(a.str("message"), "memory") {
		t.Fatalf("readyz while Redis is full: %d %s", a.Status, a.Raw)
	}
}

// TestReconcilerLongUnackedTransfer: a borrower took units from a donor
// shard and credited them to its own two hours ago, but the ack (dropping
// the donor's log entry) failed all along. The reconciler finishes the
// transfer without crediting it a second time, however old the credit.
func TestReconcilerLongUnackedTransfer(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 8, "shards": 2})
	store := s.app.Store
	long := time.Now().Add(-2 * time.Hour)
	taken, _, err := store.Take(ctx, item, 1, 0, "slow-ack", 0, long)
	if err != nil || taken != 2 {
		t.Fatalf("take: %d %v", taken, err)
	}
	if ok, err := store.Credit(ctx, item, 0, "slow-ack", taken, long); err != nil || !ok {
		t.Fatalf("credit: %v %v", ok, err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		xs, err := store.Transfers(ctx, item, 1)
		if err != nil || len(xs) != 0 {
			return fmt.Errorf("transfer still logged: %+v %v", xs, err)
		}
		return nil
	})
	c := store.Client()
	for shard, want := range []int64{6, 2} {
		key := s.app.Config.RedisPrefix + fmt.Sprintf(":{i%d:%d}:stock", item, shard)
		if n, err := c.Do(ctx, c.B().Get().Key(key).Build()).AsInt64(); err != nil || n != want {
			t.Errorf("shard %d holds %d (%v), want %d", shard, n, err, want)
		}
	}
	if st := s.stats(item); st.Remaining != 8 {
		t.Fatalf("remaining after the reconciler: %+v", st)
	}
}

// TestStockGuardRefusesOnlyExcess: when Redis holds more units than MySQL
// (here two made-up units added to the shard), the MySQL stock guard
// refuses only the reservations beyond the stock, records them as
// cancelled, and clears their buyers' marks so that they are not told
// duplicate (with a cancelled order) forever.
func TestStockGuardRefusesOnlyExcess(t *testing.T) {
	s := start(t, func(c *config.Config) { c.WorkerConsumers = 1 })
	ctx := context.Background()
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 3, "shards": 1})
	c := s.app.Store.Client()
	stock := s.app.Config.RedisPrefix + fmt.Sprintf(":{i%d:0}:stock", item)
	if err := c.Do(ctx, c.B().Incrby().Key(stock).Increment(2).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for u := int64(1); u <= 5; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := s.buy(item, s.token(u)); a.Status != 202 {
				t.Errorf("buy of user %d: %d %s", u, a.Status, a.Raw)
			}
		}()
	}
	wg.Wait()
	var st stats
	testenv.Eventually(t, 20*time.Second, func() error {
		if st = s.stats(item); st.Orders != 5 {
			return fmt.Errorf("orders: %+v", st)
		}
		return nil
	})
	if st.Unpaid != 3 || st.Cancelled != 2 {
		t.Fatalf("the guard must refuse only the 2 units beyond stock: %+v", st)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		dup := 0
		for u := int64(1); u <= 5; u++ {
			if a := s.buy(item, s.token(u)); a.Status == 409 {
				dup++
			}
		}
		if dup != 3 {
			return fmt.Errorf("%d users told duplicate, want the 3 holding a live order", dup)
		}
		return nil
	})
}

// TestRedisReplyLost: the reserve script runs but its reply never reaches
// the gateway (Redis answers, the network drops it). The buy answers 503,
// saying that a unit may have been taken; the retry answers duplicate with
// the order, which becomes a row.
func TestRedisReplyLost(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.RedisAddr())
	s := start(t, func(c *config.Config) { c.RedisAddrs = []string{proxy.Addr()} })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	if a := s.buy(item, s.token(1)); a.Status != 202 {
		t.Fatalf("buy: %s", a.Raw)
	}
	proxy.Mute()
	a := s.buy(item, s.token(2))
	if a.Status != 503 || a.code() != "unavailable" {
		t.Fatalf("buy whose reply is lost: %d %s", a.Status, a.Raw)
	}
	if msg := a.str("message"); strings.Contains(msg, "nothing was taken from stock") || !strings.Contains(msg, "duplicate") {
		t.Errorf("a 503 of a buy must not promise that nothing was taken, and must say a retry is safe: %q", msg)
	}
	// The connection that lost the reply dies, as a connection that loses
	// bytes does; a new one works.
	proxy.Cut()
	proxy.Unmute()
	proxy.Restore()
	var order string
	testenv.Eventually(t, 10*time.Second, func() error {
		a := s.buy(item, s.token(2))
		if a.Status != 409 || a.code() != "duplicate" || a.str("order_id") == "" {
			return fmt.Errorf("retry: %d %s", a.Status, a.Raw)
		}
		order = a.str("order_id")
		return nil
	})
	s.waitStatus(order, 2, "unpaid", 20*time.Second)
	if st := s.settle(item); st.Unpaid != 2 || st.Remaining != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestWorkerShutdownWithHungMySQL: MySQL hangs (every byte held by a
// proxy) while a worker writes a batch; SIGTERM must still end the process
// within its shutdown deadline. The batch's offsets stay uncommitted, so it
// is written after a restart.
func TestWorkerShutdownWithHungMySQL(t *testing.T) {
	proxy := testenv.MySQLProxy(t)
	cfg := testenv.Config(t)
	cfg.MySQLDSN = proxy.DSN(t, cfg.MySQLDSN)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.Start(ctx, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Wait(ctx) }()
	t.Cleanup(func() {
		proxy.Thaw()
		<-done
	})
	s := &stack{t: t, app: a, gw: "http://" + a.HTTPAddr, admin: "http://" + a.AdminAddr,
		http: &http.Client{Timeout: 10 * time.Second}}
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	proxy.Freeze()
	if a := s.buy(item, s.token(1)); a.Status != 202 {
		t.Fatalf("buy: %d %s", a.Status, a.Raw)
	}
	time.Sleep(300 * time.Millisecond) // the worker takes the batch and hangs on MySQL
	s.http.CloseIdleConnections()
	start := time.Now()
	cancel()
	select {
	case <-done:
		t.Logf("shut down in %v with MySQL hung", time.Since(start).Round(time.Millisecond))
		done <- nil
	case <-time.After(25 * time.Second):
		t.Fatalf("not shut down 25s after the signal with MySQL hung")
	}
}

// TestWebSocketFanOut: many sockets watching one order cost one read of the
// order per change of status, not one per socket.
func TestWebSocketFanOut(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	id := s.buyOrder(item, 1)
	s.waitStatus(id, 1, "unpaid", 20*time.Second)
	const sockets = 8
	ws := make([]*watcher, sockets)
	for i := range ws {
		ws[i] = s.watch(id, 1)
		ws[i].expect(id, "unpaid")
	}
	// Let the subscription's confirmation wake-ups pass.
	testenv.Eventually(t, 5*time.Second, func() error {
		before := s.app.Payment.StatusReads()
		time.Sleep(200 * time.Millisecond)
		if after := s.app.Payment.StatusReads(); after != before {
			return fmt.Errorf("still reading: %d then %d", before, after)
		}
		return nil
	})
	before := s.app.Payment.StatusReads()
	if a := s.points(1, 100000); a.Status != 200 {
		t.Fatalf("points: %s", a.Raw)
	}
	if a := s.pay(id, 1, map[string]string{"channel": "points"}); a.Status != 200 {
		t.Fatalf("pay: %d %s", a.Status, a.Raw)
	}
	for _, w := range ws {
		w.expect(id, "paid")
	}
	if reads := s.app.Payment.StatusReads() - before; reads > 2 {
		t.Fatalf("one change seen by %d sockets cost %d reads of the order, want 1 (2 at most)", sockets, reads)
	}
}

// TestWebSocketCaps: a shopper may hold FLASHGATE_WS_PER_USER sockets at
// once; the next is refused with 429 until one closes.
func TestWebSocketCaps(t *testing.T) {
	s := start(t, func(c *config.Config) { c.WSPerUser = 2 })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	id := s.buyOrder(item, 1)
	s.waitStatus(id, 1, "unpaid", 20*time.Second)
	a, b := s.watch(id, 1), s.watch(id, 1)
	a.expect(id, "unpaid")
	b.expect(id, "unpaid")
	if got := s.wsAnswer(id, s.token(1)); got != 429 {
		t.Fatalf("a third socket of the user: %d, want 429", got)
	}
	a.conn.Close()
	testenv.Eventually(t, 5*time.Second, func() error {
		if got := s.wsAnswer(id, s.token(1)); got != 101 {
			return fmt.Errorf("after one closed: %d", got)
		}
		return nil
	})
}

// TestActivitiesServedWhileMySQLHangs: /api/v1/activities is a snapshot
// refreshed by one request at a time without a lock held across its I/O:
// while a refresh waits on a hung MySQL, other requests get the last
// snapshot at once instead of queueing behind it.
func TestActivitiesServedWhileMySQLHangs(t *testing.T) {
	proxy := testenv.MySQLProxy(t)
	s := start(t, func(c *config.Config) {
		c.MySQLDSN = proxy.DSN(t, c.MySQLDSN)
	})
	s.sale(-time.Second, time.Hour, map[string]any{"stock": 5, "shards": 1})
	if a := s.do("GET", s.gw+"/api/v1/activities", "", nil); a.Status != 200 {
		t.Fatalf("activities: %d %s", a.Status, a.Raw)
	}
	time.Sleep(1100 * time.Millisecond) // the snapshot is due for a refresh
	proxy.Freeze()
	defer proxy.Thaw()
	go s.do("GET", s.gw+"/api/v1/activities", "", nil) // refreshes, and hangs
	time.Sleep(100 * time.Millisecond)
	fast := &http.Client{Timeout: 500 * time.Millisecond}
	resp, err := fast.Get(s.gw + "/api/v1/activities")
	if err != nil {
		t.Fatalf("activities while a refresh hangs on MySQL: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("activities while a refresh hangs on MySQL: %d", resp.StatusCode)
	}
}
