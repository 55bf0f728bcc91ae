package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

// gatedClient counts the script calls and holds the first one after it is
// armed until the test opens the gate, so that the buys that arrive
// meanwhile queue for the next call. With fail set, the held call fails
// as on a lost connection instead of running.
type gatedClient struct {
	rueidis.Client
	armed atomic.Bool
	calls atomic.Int64
	held  chan struct{} // closed once the first call waits at the gate
	gate  chan struct{}
	fail  bool
}

func (c *gatedClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if name := cmd.Commands()[0]; c.armed.Load() && (name == "EVALSHA" || name == "EVAL") {
		if c.calls.Add(1) == 1 {
			close(c.held)
			<-c.gate
			if c.fail {
				dead, cancel := context.WithCancel(ctx)
				cancel()
				return c.Client.Do(dead, cmd)
			}
		}
	}
	return c.Client.Do(ctx, cmd)
}

// openGated opens a store whose script calls go through a gatedClient, on
// a prefix of its own; plain is a store on the same prefix without it.
func openGated(t *testing.T) (s, plain *redis.Store, c *gatedClient) {
	t.Helper()
	plain = open(t)
	c = &gatedClient{held: make(chan struct{}), gate: make(chan struct{})}
	s, err := redis.Open(context.Background(), redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: plain.Prefix(),
		Wrap: func(inner rueidis.Client) rueidis.Client { c.Client = inner; return c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	// Load the script into Redis first, so that no call below is counted
	// twice (EVALSHA refused, then EVAL).
	reserve(t, s, 999, 0, 1, "warm")
	c.armed.Store(true)
	return s, plain, c
}

// openGatedLoaded is openGated with shard 0 of item loaded with units.
func openGatedLoaded(t *testing.T, item, units int64) (s, plain *redis.Store, c *gatedClient) {
	t.Helper()
	s, plain, c = openGated(t)
	if _, err := plain.Preload(context.Background(), item, 0, units); err != nil {
		t.Fatal(err)
	}
	return s, plain, c
}

// buy is one Reserve call of a test and its answer.
type buy struct {
	user  int64
	order string
	res   redis.ReserveResult
	err   error
}

// reserveQueued runs Reserve for buys on shard 0 of item (see queued) and
// sets their answers.
func reserveQueued(t *testing.T, s *redis.Store, c *gatedClient, item int64, buys []buy) {
	t.Helper()
	queued(t, s, c, item, 0, len(buys), func(i int) {
		b := &buys[i]
		r := flashgate.Reservation{OrderID: b.order, ItemID: item, UserID: b.user, Amount: 100, At: time.Now()}
		b.res, b.err = s.Reserve(context.Background(), item, 0, b.user, b.order, r.AppendWire(nil), r.At)
	})
}

// wantAnswers checks each of buys against its answer in want.
func wantAnswers(t *testing.T, buys []buy, want []redis.ReserveResult) {
	t.Helper()
	for i, b := range buys {
		if b.err != nil || b.res != want[i] {
			t.Errorf("buy %d (user %d, order %s): %+v %v, want %+v", i, b.user, b.order, b.res, b.err, want[i])
		}
	}
}

// queued runs n buys of a shard, buy(0) to buy(n-1), each in a goroutine
// of its own: the first goes at once and is held at the gate, the others
// are started one by one, each once the previous waits in the shard's
// queue, so that the queue holds them in order. Then the gate opens; it
// returns once every buy has returned.
func queued(t *testing.T, s *redis.Store, c *gatedClient, item int64, shard, n int, buy func(i int)) {
	t.Helper()
	var wg sync.WaitGroup
	run := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buy(i)
		}()
	}
	run(0)
	<-c.held
	for i := 1; i < n; i++ {
		run(i)
		for since := time.Now(); s.QueuedBuyers(item, shard) != i; time.Sleep(50 * time.Microsecond) {
			if time.Since(since) > 5*time.Second {
				t.Fatalf("%d buys queued, want %d", s.QueuedBuyers(item, shard), i)
			}
		}
	}
	close(c.gate)
	wg.Wait()
}

// TestReserveCoalesces: buys of one shard that arrive while a call is in
// flight share the next calls, at most MaxBatch a call, in their order of
// arrival, and each gets the answer it would have got alone: the first
// `units` buyers a unit each, with the units left after theirs, the rest
// an empty shard.
func TestReserveCoalesces(t *testing.T) {
	const item, units, buyers = 1, 100, 200
	s, plain, c := openGatedLoaded(t, item, units)
	ctx := context.Background()
	buys := make([]buy, buyers)
	ids := flashgate.NewOrderIDs()
	for i := range buys {
		buys[i] = buy{user: int64(1000 + i), order: ids.New(item)}
	}
	reserveQueued(t, s, c, item, buys)
	// The first call carries the first buy; the 199 others queue behind
	// it and go in calls of 64, 64, 64 and 7.
	if got, want := c.calls.Load(), int64(1+(buyers-1+redis.MaxBatch-1)/redis.MaxBatch); got != want {
		t.Errorf("%d script calls for %d buyers, want %d", got, buyers, want)
	}
	for i, b := range buys {
		want := redis.ReserveResult{Outcome: redis.ShardEmpty}
		if i < units {
			want = redis.ReserveResult{Outcome: redis.Reserved, Left: int64(units - 1 - i)}
		}
		if b.err != nil || b.res != want {
			t.Errorf("buyer %d: %+v %v, want %+v", i, b.res, b.err, want)
		}
	}
	counts, err := plain.Counts(ctx, item, 1)
	if err != nil || counts[0].Stock != 0 || len(counts[0].Outbox) != units {
		t.Fatalf("shard after the buys: %+v %v", counts, err)
	}
	// The taken units are in one outbox entry a call that took any (the
	// first three: 1, 64 and 35 units), each with its buyers'
	// reservations in their order; each buyer holds the mark.
	outbox, err := plain.Outbox(ctx, item, 0)
	if err != nil || len(outbox) != 3 {
		t.Fatalf("outbox: %d entries, want 3 (%v)", len(outbox), err)
	}
	next := 0
	for _, n := range []int{1, 64, 35} {
		call := buys[next : next+n]
		next += n
		field := call[0].order
		for _, b := range call[1:] {
			field += " " + b.order
		}
		rs, err := flashgate.ParseEntry([]byte(outbox[field]))
		if err != nil || len(rs) != n {
			t.Fatalf("entry of the call of %d from %s: %d reservations, %v", n, call[0].order, len(rs), err)
		}
		for i, b := range call {
			if rs[i].OrderID != b.order || rs[i].UserID != b.user || rs[i].ItemID != item {
				t.Fatalf("entry's reservation %d: %+v, want order %s of user %d", i, rs[i], b.order, b.user)
			}
		}
	}
	for _, b := range buys[:units] {
		it := &redis.CachedItem{Item: flashgate.Item{ID: item, Shards: 1, Price: 100}}
		r, ok, err := plain.PendingOrder(ctx, it, b.user, b.order)
		if err != nil || !ok || r.OrderID != b.order || r.UserID != b.user || r.Amount != 100 {
			t.Fatalf("pending order %s: %+v %v %v", b.order, r, ok, err)
		}
	}
	if got := reserve(t, plain, item, 0, buys[0].user, "again"); got.Outcome != redis.DuplicateBuyer || got.OrderID != buys[0].order {
		t.Fatalf("the first buyer again: %+v", got)
	}
}

// TestReserveSameUserInOneCall: a user twice in one call holds one unit:
// the second buy sees the first's mark. A buy sent twice in one call (a
// caller that retried) reserves once and hears reserved both times.
func TestReserveSameUserInOneCall(t *testing.T) {
	const item = 2
	s, plain, c := openGatedLoaded(t, item, 10)
	ctx := context.Background()
	buys := []buy{
		{user: 1, order: "lead"},
		{user: 7, order: "a"},
		{user: 8, order: "c"},
		{user: 7, order: "b"},
		{user: 8, order: "c"},
		{user: 1, order: "d"},
	}
	reserveQueued(t, s, c, item, buys)
	want := []redis.ReserveResult{
		{Outcome: redis.Reserved, Left: 9},
		{Outcome: redis.Reserved, Left: 8},
		{Outcome: redis.Reserved, Left: 7},
		{Outcome: redis.DuplicateBuyer, OrderID: "a"},
		{Outcome: redis.Reserved, Left: 7, Earlier: true}, // not in the entry again
		{Outcome: redis.DuplicateBuyer, OrderID: "lead"},
	}
	wantAnswers(t, buys, want)
	if n := c.calls.Load(); n != 2 {
		t.Errorf("%d script calls, want 2", n)
	}
	counts, err := plain.Counts(ctx, item, 1)
	if err != nil || counts[0].Stock != 7 || len(counts[0].Outbox) != 3 {
		t.Fatalf("shard after the buys: %+v %v", counts, err)
	}
}

// TestReserveUserTwiceAmongNewBuyers: a call whose buyers hold no mark and
// find units enough, but with a user twice, is not the usual call (every
// buyer takes a unit) though the script wrote the marks as if it were: the
// user keeps the mark of its first buy, the second is a duplicate, and the
// entry holds the units taken, once each.
func TestReserveUserTwiceAmongNewBuyers(t *testing.T) {
	const item = 9
	s, plain, c := openGatedLoaded(t, item, 10)
	ctx := context.Background()
	buys := []buy{
		{user: 1, order: "lead"},
		{user: 7, order: "a"},
		{user: 8, order: "b"},
		{user: 7, order: "c"},
		{user: 9, order: "d"},
	}
	reserveQueued(t, s, c, item, buys)
	want := []redis.ReserveResult{
		{Outcome: redis.Reserved, Left: 9},
		{Outcome: redis.Reserved, Left: 8},
		{Outcome: redis.Reserved, Left: 7},
		{Outcome: redis.DuplicateBuyer, OrderID: "a"},
		{Outcome: redis.Reserved, Left: 6},
	}
	wantAnswers(t, buys, want)
	outbox, err := plain.Outbox(ctx, item, 0)
	if err != nil || len(outbox) != 2 || outbox["lead"] == "" || outbox["a b d"] == "" {
		t.Fatalf("outbox: %v %v, want the entries lead and a b d", outbox, err)
	}
	counts, err := plain.Counts(ctx, item, 1)
	if err != nil || counts[0].Stock != 6 {
		t.Fatalf("shard after the buys: %+v %v", counts, err)
	}
	for user, order := range map[int64]string{7: "a", 8: "b", 9: "d"} {
		if got := reserve(t, plain, item, 0, user, "again"); got.Outcome != redis.DuplicateBuyer || got.OrderID != order {
			t.Errorf("user %d again: %+v, want a duplicate of %s", user, got, order)
		}
	}
}

// TestReserveAnnouncesOneEntryACall: a call that took units hands Kafka one
// message, the call's outbox entry as the script wrote it, keyed by its
// first order id (flashgate.EntryKey); the announcer's error reaches the
// buyers it took and only them; a buy whose unit an earlier call took is
// announced alone.
func TestReserveAnnouncesOneEntryACall(t *testing.T) {
	const item = 6
	s, plain, c := openGatedLoaded(t, item, 3)
	ctx := context.Background()
	type message struct{ key, value string }
	var mu sync.Mutex
	var got []message
	refuse := errors.New("kafka refused")
	s.Announce(func(_ context.Context, key, value []byte) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, message{string(key), string(value)})
		return refuse
	})
	ids := flashgate.NewOrderIDs()
	buys := []buy{
		{user: 1, order: ids.New(item)},
		{user: 2, order: ids.New(item)},
		{user: 1, order: ids.New(item)}, // duplicate
		{user: 3, order: ids.New(item)},
		{user: 4, order: ids.New(item)}, // the shard is empty
	}
	reserveQueued(t, s, c, item, buys)
	outbox, err := plain.Outbox(ctx, item, 0)
	if err != nil || len(outbox) != 2 {
		t.Fatalf("outbox: %v %v", outbox, err)
	}
	lead, rest := buys[0].order, buys[1].order+" "+buys[3].order
	key := func(order string) string { return string(flashgate.EntryKey(order)) }
	want := []message{{key(lead), outbox[lead]}, {key(buys[1].order), outbox[rest]}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] || strings.Count(got[1].value, "\n") != 1 {
		t.Fatalf("announced %q, want %q", got, want)
	}
	for i, b := range buys {
		taken := i == 0 || i == 1 || i == 3
		if b.err != nil || (b.res.Outcome == redis.Reserved) != taken || (b.res.Unannounced == refuse) != taken {
			t.Errorf("buy %d: %+v %v", i, b.res, b.err)
		}
	}
	// The script run again for buy 1 (a retry): reserved earlier, so Buy
	// announces its reservation alone.
	got = nil
	it := &redis.CachedItem{Item: flashgate.Item{ID: item, Shards: 1, Price: 100}}
	r := flashgate.Reservation{OrderID: buys[1].order, ItemID: item, UserID: 2, Amount: 100, At: time.Now()}
	res, err := s.Buy(ctx, it, &r, nil)
	if err != nil || res.Outcome != redis.Reserved || res.Unannounced != refuse || len(got) != 1 ||
		got[0] != (message{key(buys[1].order), string(res.Wire)}) {
		t.Fatalf("a retried buy: %+v %v, announced %q", res, err, got)
	}
}

// TestReserveFenceReachesEveryBuyer: a shard fenced while a call waits
// refuses every buyer of it and of the next call, and changes nothing.
func TestReserveFenceReachesEveryBuyer(t *testing.T) {
	const item = 3
	s, plain, c := openGatedLoaded(t, item, 10)
	ctx := context.Background()
	// A run id no live Redis has: the shard reads as rewound.
	pc := plain.Client()
	ep := fmt.Sprintf("%s:{i%d:0}:ep", plain.Prefix(), item)
	if err := pc.Do(ctx, pc.B().Hset().Key(ep).FieldValue().FieldValue("run", "0123456789abcdef0123456789abcdef01234567").FieldValue("ls", "1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	buys := make([]buy, 20)
	for i := range buys {
		buys[i] = buy{user: int64(i + 1), order: fmt.Sprintf("f%d", i)}
	}
	reserveQueued(t, s, c, item, buys)
	for i, b := range buys {
		if !errors.Is(b.err, redis.ErrFenced) {
			t.Errorf("buyer %d of a fenced shard: %+v %v", i, b.res, b.err)
		}
	}
	if n := c.calls.Load(); n != 2 {
		t.Errorf("%d script calls, want 2", n)
	}
	counts, err := plain.Counts(ctx, item, 1)
	if err != nil || counts[0].Stock != 10 || len(counts[0].Outbox) != 0 {
		t.Fatalf("fenced shard after the buys: %+v %v", counts, err)
	}
}

// TestReserveLostCallReachesEveryBuyer: a call that fails on the way (a
// connection lost) fails every buyer it carries, and only them.
func TestReserveLostCallReachesEveryBuyer(t *testing.T) {
	const item = 4
	s, plain, c := openGatedLoaded(t, item, 10)
	c.fail = true
	ctx := context.Background()
	buys := []buy{{user: 1, order: "l1"}, {user: 2, order: "l2"}, {user: 3, order: "l3"}}
	reserveQueued(t, s, c, item, buys)
	if buys[0].err == nil {
		t.Errorf("the buy of the lost call: %+v with no error", buys[0].res)
	}
	for _, b := range buys[1:] {
		if b.err != nil || b.res.Outcome != redis.Reserved {
			t.Errorf("buy %s of the next call: %+v %v", b.order, b.res, b.err)
		}
	}
	// The queued buyers went in one call of their own.
	if n := c.calls.Load(); n != 2 {
		t.Errorf("%d script calls, want 2", n)
	}
	if counts, err := plain.Counts(ctx, item, 1); err != nil || counts[0].Stock != 8 {
		t.Fatalf("shard after the buys: %+v %v", counts, err)
	}
}

// TestReserveLeavesQueueOnDeadline: a buy whose context ends while it waits
// for a call leaves the queue with the context's error, and nothing is
// taken for it.
func TestReserveLeavesQueueOnDeadline(t *testing.T) {
	const item = 5
	s, plain, c := openGatedLoaded(t, item, 10)
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := s.Reserve(ctx, item, 0, 1, "first", []byte("w"), time.Now())
		first <- err
	}()
	<-c.held
	gone, cancel := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() {
		_, err := s.Reserve(gone, item, 0, 2, "gone", []byte("w"), time.Now())
		waited <- err
	}()
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := s.QueuedBuyers(item, 0); n != 1 {
			return fmt.Errorf("%d queued", n)
		}
		return nil
	})
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued buy whose context ended: %v", err)
	}
	close(c.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := c.calls.Load(); n != 1 {
		t.Errorf("%d script calls, want 1: nobody was left to send", n)
	}
	if counts, err := plain.Counts(ctx, item, 1); err != nil || counts[0].Stock != 9 || len(counts[0].Outbox) != 1 {
		t.Fatalf("shard after the buys: %+v %v", counts, err)
	}
}

// TestBuyCoalescedAcrossLastUnit: a call whose buyers outnumber the units
// left reserves for the first of them; the others hear an empty shard and
// go on as lone buyers do, borrowing from the other shard until every unit
// is sold, then sold out.
func TestBuyCoalescedAcrossLastUnit(t *testing.T) {
	s, plain, c := openGated(t)
	ctx := context.Background()
	const item, shards = 6, 2
	it := flashgate.Item{ID: item, Shards: shards, Stock: 5, Price: 100, StartAt: time.Now().Add(-time.Second), EndAt: time.Now().Add(time.Hour)}
	plain.Preload(ctx, item, 0, 2)
	plain.Preload(ctx, item, 1, 3)
	if err := plain.PutItems(ctx, []flashgate.Item{it}); err != nil {
		t.Fatal(err)
	}
	cached, err := s.Items().Get(ctx, item, time.Now())
	if err != nil || cached.Missing {
		t.Fatalf("item: %v", err)
	}
	var users []int64 // users whose home is shard 0
	for u := int64(1); len(users) < 7; u++ {
		if flashgate.HomeShard(u, shards) == 0 {
			users = append(users, u)
		}
	}
	ids := flashgate.NewOrderIDs()
	res := make([]redis.BuyResult, len(users))
	errs := make([]error, len(users))
	queued(t, s, c, item, 0, len(users), func(i int) {
		r := flashgate.Reservation{OrderID: ids.New(item), ItemID: item, UserID: users[i], Amount: 100, At: time.Now()}
		res[i], errs[i] = s.Buy(ctx, cached, &r, nil)
	})
	// The first two in line get shard 0's units, whatever the others do.
	for i := 0; i < 2; i++ {
		if errs[i] != nil || res[i].Outcome != redis.Reserved || res[i].Shard != 0 {
			t.Errorf("buyer %d: %+v %v", i, res[i], errs[i])
		}
	}
	reserved, soldOut := 0, 0
	for i := range users {
		switch {
		case errs[i] != nil:
			t.Errorf("buyer %d: %v", i, errs[i])
		case res[i].Outcome == redis.Reserved:
			reserved++
		case res[i].Outcome == redis.ShardEmpty:
			soldOut++
		default:
			t.Errorf("buyer %d: %+v", i, res[i])
		}
	}
	if reserved != 5 || soldOut != 2 {
		t.Errorf("%d reserved, %d sold out; want 5 and 2", reserved, soldOut)
	}
	counts, err := plain.Counts(ctx, item, shards)
	if err != nil || counts[0].Stock+counts[1].Stock != 0 || len(counts[0].Outbox) != 5 {
		t.Fatalf("shards after the buys: %+v %v", counts, err)
	}
	if so, _ := plain.SoldOut(ctx, item); !so {
		t.Error("sold-out flag not raised")
	}
}

// TestReserveConcurrentBuyers: buyers of one shard let loose at once share
// calls, and between them get every unit once: the units left after each
// reservation are every count from stock-1 down to 0, once each.
func TestReserveConcurrentBuyers(t *testing.T) {
	const item, units, buyers = 7, 300, 400
	s, plain, c := openGatedLoaded(t, item, units)
	close(c.gate) // nothing held: the buys go as they come
	ctx := context.Background()
	buys := make([]buy, buyers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range buys {
		b := &buys[i]
		b.user, b.order = int64(1000+i), fmt.Sprintf("c%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			b.res, b.err = s.Reserve(ctx, item, 0, b.user, b.order, []byte("w"), time.Now())
		}()
	}
	close(start)
	wg.Wait()
	left := map[int64]bool{}
	empty := 0
	for _, b := range buys {
		switch {
		case b.err != nil:
			t.Fatalf("buyer %d: %v", b.user, b.err)
		case b.res.Outcome == redis.Reserved && !left[b.res.Left] && b.res.Left >= 0 && b.res.Left < units:
			left[b.res.Left] = true
		case b.res.Outcome == redis.ShardEmpty:
			empty++
		default:
			t.Fatalf("buyer %d: %+v (units left already told to another buyer: %v)", b.user, b.res, left[b.res.Left])
		}
	}
	if len(left) != units || empty != buyers-units {
		t.Fatalf("%d reserved, %d told empty", len(left), empty)
	}
	if n := c.calls.Load(); n >= buyers {
		t.Errorf("%d script calls for %d buyers", n, buyers)
	} else {
		t.Logf("%d script calls for %d buyers", n, buyers)
	}
	counts, err := plain.Counts(ctx, item, 1)
	if err != nil || counts[0].Stock != 0 || len(counts[0].Outbox) != units {
		t.Fatalf("shard after the buys: %+v %v", counts, err)
	}
}

// flightClient holds every script call for delay, and until gate is
// closed (or the call's context ends) when set, and counts the calls in
// flight at most.
type flightClient struct {
	rueidis.Client
	delay             time.Duration
	gate              chan struct{}
	inFlight, maxSeen atomic.Int64
	calls             atomic.Int64
}

func (c *flightClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if name := cmd.Commands()[0]; name == "EVALSHA" || name == "EVAL" {
		c.calls.Add(1)
		n := c.inFlight.Add(1)
		defer c.inFlight.Add(-1)
		for m := c.maxSeen.Load(); n > m && !c.maxSeen.CompareAndSwap(m, n); m = c.maxSeen.Load() {
		}
		if c.gate != nil {
			select {
			case <-c.gate:
			case <-ctx.Done():
			}
		}
		time.Sleep(c.delay)
	}
	return c.Client.Do(ctx, cmd)
}

// openFlight opens a store whose script calls go through c, on a prefix of
// its own, with shards shards of item loaded with units each; plain is a
// store on the same prefix without c.
func openFlight(t *testing.T, c *flightClient, item int64, shards int, units int64) (s, plain *redis.Store) {
	t.Helper()
	plain = open(t)
	for sh := range shards {
		if _, err := plain.Preload(context.Background(), item, sh, units); err != nil {
			t.Fatal(err)
		}
	}
	s, err := redis.Open(context.Background(), redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: plain.Prefix(),
		Wrap: func(inner rueidis.Client) rueidis.Client { c.Client = inner; return c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, plain
}

// TestReserveCallsInFlight: a store has at most MaxCallsInFlight reserve calls
// in flight on a Redis of one node, whatever the shards, and the buys that
// wait meanwhile go together in the next calls, each with its own answer.
func TestReserveCallsInFlight(t *testing.T) {
	const item, shards, buyers = 1, 8, 400
	c := &flightClient{delay: 2 * time.Millisecond}
	s, _ := openFlight(t, c, item, shards, buyers)
	ids := flashgate.NewOrderIDs()
	results := make([]redis.ReserveResult, buyers)
	errs := make([]error, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			user, order := int64(1000+i), ids.New(item)
			r := flashgate.Reservation{OrderID: order, ItemID: item, UserID: user, Amount: 100, Shard: i % shards, At: time.Now()}
			results[i], errs[i] = s.Reserve(context.Background(), item, i%shards, user, order, r.AppendWire(nil), r.At)
		})
	}
	wg.Wait()
	for i := range buyers {
		if errs[i] != nil || results[i].Outcome != redis.Reserved || results[i].Earlier {
			t.Fatalf("buyer %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if got := c.maxSeen.Load(); got != redis.MaxCallsInFlight {
		t.Errorf("%d reserve calls in flight at most, want %d (one Redis node)", got, redis.MaxCallsInFlight)
	}
	// Two at a time, 2 ms each: without the waits' buys joining the calls
	// there would be a call for every few buyers.
	if calls := c.calls.Load(); calls > buyers/4 {
		t.Errorf("%d calls for %d buyers", calls, buyers)
	}
	counts, err := s.Counts(context.Background(), item, shards)
	if err != nil {
		t.Fatal(err)
	}
	for sh, n := range counts {
		if n.Stock != buyers-buyers/shards || len(n.Outbox) != buyers/shards {
			t.Errorf("shard %d: %d units left and %d orders in its outbox, want %d and %d",
				sh, n.Stock, len(n.Outbox), buyers-buyers/shards, buyers/shards)
		}
	}
}

// TestReserveGivesUpWaitingForACall: a leader whose context ends while the
// store's calls are all out answers its buyers with the context's error,
// having sent nothing: the same buy afterwards takes a unit as new.
func TestReserveGivesUpWaitingForACall(t *testing.T) {
	const item = 1
	c := &flightClient{gate: make(chan struct{})}
	s, _ := openFlight(t, c, item, redis.MaxCallsInFlight+1, 10)
	ids := flashgate.NewOrderIDs()
	reserveOn := func(ctx context.Context, shard int, user int64, order string) (redis.ReserveResult, error) {
		r := flashgate.Reservation{OrderID: order, ItemID: item, UserID: user, Amount: 100, Shard: shard, At: time.Now()}
		return s.Reserve(ctx, item, shard, user, order, r.AppendWire(nil), r.At)
	}
	var wg sync.WaitGroup
	for sh := range redis.MaxCallsInFlight { // every call the store may have out, held
		wg.Go(func() {
			if res, err := reserveOn(context.Background(), sh, int64(100+sh), ids.New(item)); err != nil || res.Outcome != redis.Reserved {
				t.Errorf("held buy on shard %d: %+v, %v", sh, res, err)
			}
		})
	}
	for c.inFlight.Load() != redis.MaxCallsInFlight {
		time.Sleep(100 * time.Microsecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	order := ids.New(item)
	if res, err := reserveOn(ctx, redis.MaxCallsInFlight, 7, order); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a call past the deadline: %+v, %v", res, err)
	}
	if got := c.calls.Load(); got != redis.MaxCallsInFlight {
		t.Errorf("%d script calls, want the %d held", got, redis.MaxCallsInFlight)
	}
	close(c.gate)
	wg.Wait()
	if res, err := reserveOn(context.Background(), redis.MaxCallsInFlight, 7, order); err != nil || res.Outcome != redis.Reserved || res.Earlier || res.Left != 9 {
		t.Fatalf("the same buy again: %+v, %v; want a unit taken now, 9 left", res, err)
	}
}

// TestReserveTakesTheWaitIntoItsCall: the buys of a shard that queue while
// the leader of its next call waits for the store's calls to be fewer than
// MaxCallsInFlight go in that call, not in one more after it.
func TestReserveTakesTheWaitIntoItsCall(t *testing.T) {
	const item, waiting = 1, 5
	c := &flightClient{gate: make(chan struct{})}
	s, _ := openFlight(t, c, item, redis.MaxCallsInFlight+1, 10)
	ids := flashgate.NewOrderIDs()
	var wg sync.WaitGroup
	buyOn := func(shard int, user int64) {
		wg.Go(func() {
			order := ids.New(item)
			r := flashgate.Reservation{OrderID: order, ItemID: item, UserID: user, Amount: 100, Shard: shard, At: time.Now()}
			if res, err := s.Reserve(context.Background(), item, shard, user, order, r.AppendWire(nil), r.At); err != nil || res.Outcome != redis.Reserved {
				t.Errorf("user %d on shard %d: %+v, %v", user, shard, res, err)
			}
		})
	}
	for sh := range redis.MaxCallsInFlight { // every call the store may have out, held
		buyOn(sh, int64(100+sh))
	}
	for c.inFlight.Load() != redis.MaxCallsInFlight {
		time.Sleep(100 * time.Microsecond)
	}
	shard := redis.MaxCallsInFlight
	for i := range waiting + 1 { // a leader waiting for a call, and those queued behind it
		buyOn(shard, int64(200+i))
	}
	for since := time.Now(); s.QueuedBuyers(item, shard) != waiting; time.Sleep(100 * time.Microsecond) {
		if time.Since(since) > 5*time.Second {
			t.Fatalf("%d buys queued, want %d", s.QueuedBuyers(item, shard), waiting)
		}
	}
	if got := c.calls.Load(); got != redis.MaxCallsInFlight {
		t.Fatalf("%d script calls before the held ones ended, want %d", got, redis.MaxCallsInFlight)
	}
	close(c.gate)
	wg.Wait()
	if got := c.calls.Load(); got != redis.MaxCallsInFlight+1 {
		t.Errorf("%d script calls, want %d: the held ones, and one for the %d buys of shard %d", got, redis.MaxCallsInFlight+1, waiting+1, shard)
	}
}
