package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func openCluster(t *testing.T) (*redis.Store, *testenv.Cluster) {
	t.Helper()
	cl := testenv.RedisCluster(t)
	s, err := redis.Open(context.Background(), redis.Options{Addrs: cl.Addrs, Prefix: testenv.PrefixOn(t, cl.Addrs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, cl
}

// TestReserveDuringSlotMigration moves the slot of a shard by hand, step by
// step as `redis-cli --cluster reshard` does, with a buy in the middle:
// Redis answers the script TRYAGAIN while the shard's keys are split or
// partly missing, the store waits it out, and the buy then takes exactly one
// unit on the new owner. Reads in between follow ASK.
func TestReserveDuringSlotMigration(t *testing.T) {
	s, cl := openCluster(t)
	ctx := context.Background()
	const item = 41
	if _, err := s.Preload(ctx, item, 0, 5); err != nil {
		t.Fatal(err)
	}
	stock := s.Prefix() + ":{i41:0}:stock"
	c := s.Client()
	slot, err := c.Do(ctx, c.B().ClusterKeyslot().Key(stock).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	from, _, err := cl.Owner(int(slot))
	if err != nil {
		t.Fatal(err)
	}
	to := cl.Addrs[0]
	if to == from {
		to = cl.Addrs[1]
	}
	if err := cl.BeginMigration(int(slot), from, to); err != nil {
		t.Fatal(err)
	}
	ended := false
	t.Cleanup(func() {
		if !ended { // leave the shared cluster whole for the next test
			cl.MoveKeys(int(slot), from, to)
			cl.EndMigration(int(slot), to)
		}
	})
	// What Redis itself answers a script whose keys are partly missing in a
	// migrating slot; rueidis hands it back as is.
	probe := c.Do(ctx, c.B().Eval().Script("return 1").Numkeys(2).Key(stock, s.Prefix()+":{i41:0}:buyers").Build())
	if e, ok := rueidis.IsRedisErr(probe.Error()); !ok || !e.IsTryAgain() {
		t.Fatalf("a two-key script in a migrating slot: %v, want TRYAGAIN", probe.Error())
	}
	if err := cl.MoveKeys(int(slot), from, to); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RemainingNow(ctx, item, 1); err != nil || n != 5 {
		t.Fatalf("stock read through ASK: %d %v", n, err)
	}

	done := make(chan redis.ReserveResult, 1)
	go func() { done <- reserve(t, s, item, 0, 7, "o1") }()
	select {
	case r := <-done:
		t.Fatalf("the buy ran while its slot was split: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	if err := cl.EndMigration(int(slot), to); err != nil {
		t.Fatal(err)
	}
	ended = true
	select {
	case r := <-done:
		if r.Outcome != redis.Reserved || r.Left != 4 {
			t.Fatalf("the buy after the migration: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the buy did not finish after the migration")
	}
	if n, err := s.RemainingNow(ctx, item, 1); err != nil || n != 4 {
		t.Fatalf("stock after one buy: %d %v", n, err)
	}
	if owner, _, _ := cl.Owner(int(slot)); owner != to {
		t.Fatalf("slot %d is on %s, want %s", slot, owner, to)
	}
	if got := reserve(t, s, item, 0, 7, "o1"); got.Outcome != redis.Reserved || got.Left != 4 {
		t.Fatalf("the same buy again: %+v", got)
	}
}

// TestBuysWhileSlotsMigrate buys concurrently on an item whose shard slots
// keep migrating between masters, every buyer homed on one shard so that
// most buys borrow from the others (take, credit-and-reserve: scripts with
// keys that may not exist yet, which Redis refuses with TRYAGAIN during a
// migration): no buy fails, and every unit is left in a shard, in a logged
// transfer, or held by exactly one buyer who was told Reserved.
func TestBuysWhileSlotsMigrate(t *testing.T) {
	s, cl := openCluster(t)
	ctx := context.Background()
	const item, shards, perShard, migrations = 61, 4, 3000, 6
	for sh := range shards {
		if _, err := s.Preload(ctx, item, sh, perShard); err != nil {
			t.Fatal(err)
		}
	}
	it := &flashgate.Item{ID: item, Shards: shards, Stock: shards * perShard, Price: 100,
		StartAt: time.Now().Add(-time.Hour), EndAt: time.Now().Add(time.Hour)}
	if err := s.PutItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	cached, err := s.Items().Get(ctx, item, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	var slots []int
	for sh := range shards {
		slot, err := c.Do(ctx, c.B().ClusterKeyslot().Key(fmt.Sprintf("%s:{i%d:%d}:stock", s.Prefix(), item, sh)).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		slots = append(slots, int(slot))
	}

	// Migrate the shards' slots round and round, while buyers buy.
	migrated := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		n := 0
		defer func() { migrated <- n; close(done) }()
		for i := 0; i < migrations; i++ {
			slot := slots[i%len(slots)]
			from, _, err := cl.Owner(slot)
			if err != nil {
				t.Error(err)
				return
			}
			to := cl.Addrs[(slices.Index(cl.Addrs, from)+1)%len(cl.Addrs)]
			if err := cl.BeginMigration(slot, from, to); err != nil {
				t.Error(err)
				return
			}
			if err := cl.MoveKeys(slot, from, to); err != nil {
				t.Error(err)
				return
			}
			if err := cl.EndMigration(slot, to); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()

	ids := flashgate.NewOrderIDs()
	users := make(chan int64)
	go func() {
		defer close(users)
		for u := int64(1); ; u++ {
			if flashgate.HomeShard(u, shards) != 0 {
				continue // every buyer's home is shard 0: they borrow from the others
			}
			select {
			case users <- u:
			case <-done:
				return
			}
		}
	}()
	var mu sync.Mutex
	reserved := map[int64]string{}
	failed := 0
	var late atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for u := range users {
				// A buy that outlasts its deadline is tried again, as the
				// gateway's 503 is by a client: under -race on a loaded box
				// a round trip can take seconds, which is no migration
				// error; a unit the late try took comes back as the
				// user's (duplicate). TRYAGAIN must never come out.
				var res redis.BuyResult
				var err error
				for try := 0; try < 10; try++ {
					r := flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: u, Amount: 100, At: time.Now()}
					bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					res, err = s.Buy(bctx, cached, &r, nil)
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						break
					}
					late.Add(1)
				}
				if res.Outcome == redis.DuplicateBuyer {
					res.Outcome = redis.Reserved // an earlier, late try of this user took it
				}
				mu.Lock()
				switch {
				case err != nil:
					if failed < 5 {
						t.Logf("buy of user %d: %v", u, err)
					}
					failed++
				case res.Outcome == redis.Reserved:
					reserved[u] = res.OrderID
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	n := <-migrated
	t.Logf("%d slot migrations; %d reserved, %d failed, %d tries past their deadline", n, len(reserved), failed, late.Load())
	if n != migrations {
		t.Fatalf("%d slot migrations of %d", n, migrations)
	}
	if failed > 0 {
		t.Errorf("%d buys failed: a migrating slot must be waited out", failed)
	}

	// Finish the transfers a failed buy left logged, as the reconciler does.
	for sh := range shards {
		xs, err := s.Transfers(ctx, item, sh)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xs {
			if _, err := s.Credit(ctx, item, x.To, x.ID, x.Units, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := s.Ack(ctx, item, sh, x.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	var left, held int64
	holder := map[string]int64{}
	for sh := range shards {
		n, err := c.Do(ctx, c.B().Get().Key(fmt.Sprintf("%s:{i%d:%d}:stock", s.Prefix(), item, sh)).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		left += n
		m, err := c.Do(ctx, c.B().Hgetall().Key(fmt.Sprintf("%s:{i%d:%d}:buyers", s.Prefix(), item, sh)).Build()).AsStrMap()
		if err != nil {
			t.Fatal(err)
		}
		for user, order := range m {
			held++
			u, _ := strconv.ParseInt(user, 10, 64)
			if reserved[u] != order {
				t.Errorf("user %d holds %s, was told %q", u, order, reserved[u])
			}
			holder[order] = u
		}
	}
	if int(held) != len(reserved) || left+held != shards*perShard {
		t.Fatalf("%d left + %d held != %d; %d buyers told Reserved", left, held, shards*perShard, len(reserved))
	}
}

// TestReserveCallsUnboundedOnCluster: on Redis Cluster a store does not
// bound its reserve calls in flight (MaxCallsInFlight is for a Redis of one
// primary), so that calls stuck on a node cannot hold the turns of calls to
// the others: the calls of eight shards go side by side.
func TestReserveCallsUnboundedOnCluster(t *testing.T) {
	const item, shards = 43, 8
	cl := testenv.RedisCluster(t)
	c := &flightClient{delay: 20 * time.Millisecond}
	s, err := redis.Open(context.Background(), redis.Options{Addrs: cl.Addrs, Prefix: testenv.PrefixOn(t, cl.Addrs),
		Wrap: func(inner rueidis.Client) rueidis.Client { c.Client = inner; return c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for sh := range shards {
		if _, err := s.Preload(context.Background(), item, sh, 1); err != nil {
			t.Fatal(err)
		}
	}
	ids := flashgate.NewOrderIDs()
	var wg sync.WaitGroup
	for sh := range shards {
		wg.Go(func() {
			user, order := int64(500+sh), ids.New(item)
			r := flashgate.Reservation{OrderID: order, ItemID: item, UserID: user, Amount: 100, Shard: sh, At: time.Now()}
			if res, err := s.Reserve(context.Background(), item, sh, user, order, r.AppendWire(nil), r.At); err != nil || res.Outcome != redis.Reserved {
				t.Errorf("shard %d: %+v, %v", sh, res, err)
			}
		})
	}
	wg.Wait()
	if got := c.maxSeen.Load(); got <= redis.MaxCallsInFlight {
		t.Errorf("%d reserve calls in flight at most on a cluster; want the shards' calls side by side (more than %d)", got, redis.MaxCallsInFlight)
	}
}
