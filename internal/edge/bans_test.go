package edge_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/edge"
)

// redisAddr is the Redis the tests use: FLASHGATE_REDIS_ADDR (one address)
// or the local default.
func redisAddr() string {
	if a := os.Getenv("FLASHGATE_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newStore returns a BanStore under a fresh key prefix, and its client. The
// test fails when Redis cannot be reached; its keys are deleted at cleanup.
func newStore(t testing.TB) (*edge.BanStore, rueidis.Client, string) {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{redisAddr()}})
	if err != nil {
		t.Fatalf("redis at %s: %v", redisAddr(), err)
	}
	// The tag lets scripts/leftovers.sh find the keys of one test run.
	prefix := "fgtest" + os.Getenv("FLASHGATE_TEST_TAG") + ":" + rand.Text()
	t.Cleanup(func() {
		client.Do(context.Background(), client.B().Del().Key(prefix+":bans").Build())
		client.Close()
	})
	return edge.NewBanStore(client, prefix), client, prefix
}

// runCache starts a BanCache on store and waits until it is ready. The
// cache stops, and its goroutines end, at cleanup.
func runCache(t testing.TB, store *edge.BanStore) *edge.BanCache {
	t.Helper()
	c := edge.NewBanCache(store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	select {
	case <-c.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("ban cache not ready after 5s")
	}
	return c
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustBan(t testing.TB, store *edge.BanStore, b edge.Ban) {
	t.Helper()
	if err := store.Ban(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func mustList(t testing.TB, store *edge.BanStore) []edge.Ban {
	t.Helper()
	bans, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bans
}

func TestBanStore(t *testing.T) {
	ctx := context.Background()
	store, _, _ := newStore(t)
	if bans := mustList(t, store); len(bans) != 0 {
		t.Fatalf("new list: %+v", bans)
	}

	before := time.Now()
	mustBan(t, store, edge.Ban{IP: "::ffff:203.0.113.9", TTL: time.Hour, Reason: "scraper"})
	mustBan(t, store, edge.Ban{UserID: 42, Reason: "bot"})
	mustBan(t, store, edge.Ban{UserID: 7})
	mustBan(t, store, edge.Ban{IP: "2001:db8::1"})

	bans := mustList(t, store)
	var got []string
	for _, b := range bans {
		got = append(got, fmt.Sprintf("%d|%s|%s|%v", b.UserID, b.IP, b.Reason, b.ExpiresAt.IsZero()))
	}
	// An IPv6 ban is of the address's /64.
	want := []string{"7|||true", "42||bot|true", "0|203.0.113.9|scraper|false", "0|2001:db8::/64||true"}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	if exp := bans[2].ExpiresAt; exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("ExpiresAt = %s, want an hour from %s", exp, before)
	}

	if err := store.Unban(ctx, edge.Ban{UserID: 42}); err != nil {
		t.Fatal(err)
	}
	if err := store.Unban(ctx, edge.Ban{IP: "203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	if err := store.Unban(ctx, edge.Ban{UserID: 999}); err != nil {
		t.Fatalf("unban of a user never banned: %v", err)
	}
	if bans := mustList(t, store); len(bans) != 2 || bans[0].UserID != 7 || bans[1].IP != "2001:db8::/64" {
		t.Fatalf("after unbans: %+v", bans)
	}
	// Any address of the /64, or the /64 itself, names the same ban.
	mustBan(t, store, edge.Ban{IP: "2001:db8::ffff:1", Reason: "same /64"})
	if bans := mustList(t, store); len(bans) != 2 || bans[1].Reason != "same /64" {
		t.Fatalf("a second ban in the same /64: %+v", bans)
	}
	if err := store.Unban(ctx, edge.Ban{IP: "2001:db8::/64"}); err != nil {
		t.Fatal(err)
	}
	if bans := mustList(t, store); len(bans) != 1 {
		t.Fatalf("after lifting the /64: %+v", bans)
	}
}

func TestBanStoreRejectsInvalidBans(t *testing.T) {
	store, _, _ := newStore(t)
	for name, b := range map[string]edge.Ban{
		"no one":       {},
		"both":         {UserID: 1, IP: "1.2.3.4"},
		"negative id":  {UserID: -1},
		"bad ip":       {IP: "1.2.3"},
		"cidr":         {IP: "10.0.0.0/8"},
		"ipv6 /48":     {IP: "2001:db8::/48"},
		"ipv4 as /64":  {IP: "::ffff:10.0.0.0/64"},
		"bad /64":      {IP: "2001:db8::zz/64"},
		"negative ttl": {UserID: 1, TTL: -time.Second},
	} {
		if err := store.Ban(context.Background(), b); flashgate.ErrorCode(err) != flashgate.Invalid {
			t.Errorf("%s: Ban error = %v, want code invalid", name, err)
		}
	}
	if err := store.Unban(context.Background(), edge.Ban{}); flashgate.ErrorCode(err) != flashgate.Invalid {
		t.Errorf("Unban of no one: error = %v, want code invalid", err)
	}
}

func TestBanStoreDropsExpiredBans(t *testing.T) {
	store, client, prefix := newStore(t)
	mustBan(t, store, edge.Ban{UserID: 1, TTL: 50 * time.Millisecond, Reason: "short"})
	mustBan(t, store, edge.Ban{UserID: 2})
	waitFor(t, 2*time.Second, "expired ban left out of List", func() bool {
		return len(mustList(t, store)) == 1
	})
	// List also removed it, with its reason, from Redis.
	fields, err := client.Do(context.Background(), client.B().Hkeys().Key(prefix+":bans").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fields)
	if want := []string{"reason:u:2", "u:2"}; !slices.Equal(fields, want) {
		t.Fatalf("hash fields after List = %q, want %q", fields, want)
	}
}

func TestBanCache(t *testing.T) {
	store, _, _ := newStore(t)
	c := runCache(t, store)
	now := time.Now()
	addr := netip.MustParseAddr("203.0.113.9")
	if c.UserBanned(42, now) || c.IPBanned(addr, now) {
		t.Fatal("banned before any ban")
	}

	mustBan(t, store, edge.Ban{UserID: 42})
	mustBan(t, store, edge.Ban{IP: "203.0.113.9", TTL: time.Hour})
	mustBan(t, store, edge.Ban{UserID: 43, TTL: time.Hour})
	waitFor(t, time.Second, "bans applied", func() bool {
		now := time.Now()
		return c.UserBanned(42, now) && c.IPBanned(addr, now) && c.UserBanned(43, now)
	})
	now = time.Now()
	if !c.IPBanned(netip.MustParseAddr("::ffff:203.0.113.9"), now) {
		t.Error("the IPv4-mapped form of a banned address is not banned")
	}
	if c.UserBanned(44, now) || c.IPBanned(netip.MustParseAddr("203.0.113.10"), now) {
		t.Error("a neighbour is banned")
	}
	// Expiry applies at lookup time, without a reload.
	later := now.Add(2 * time.Hour)
	mustBan(t, store, edge.Ban{IP: "2001:db8:1:2::99"})
	waitFor(t, time.Second, "IPv6 ban applied", func() bool {
		return c.IPBanned(netip.MustParseAddr("2001:db8:1:2::99"), time.Now())
	})
	for ip, want := range map[string]bool{
		"2001:db8:1:2::1":                         true, // the same /64: another address of the same client
		"2001:db8:1:2:ffff:ffff:ffff:ffff":        true,
		"fe80::1%eth0":                            false,
		"2001:db8:1:3::99":                        false, // the next /64: someone else
		"2001:db8:1:1:ffff:ffff:ffff:ffff":        false,
		"::ffff:203.0.113.9":                      true,
		"2001:db8:1:2:0:0:0:0":                    true,
		"2001:0db8:0001:0002:abcd:abcd:abcd:abcd": true,
	} {
		if got := c.IPBanned(netip.MustParseAddr(ip), now); got != want {
			t.Errorf("IPBanned(%s) = %v, want %v", ip, got, want)
		}
	}
	if c.UserBanned(43, later) || c.IPBanned(addr, later) {
		t.Error("a ban is still in force after its TTL")
	}
	if !c.UserBanned(42, later) {
		t.Error("a permanent ban expired")
	}

	if err := store.Unban(context.Background(), edge.Ban{UserID: 42}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "unban applied", func() bool { return !c.UserBanned(42, time.Now()) })
}

// Two gateways, each with its own cache, both apply a ban and its lifting
// within a second.
func TestBanCacheTwoGateways(t *testing.T) {
	store, _, _ := newStore(t)
	gateways := []*edge.BanCache{runCache(t, store), runCache(t, store)}
	addr := netip.MustParseAddr("2001:db8::7")

	mustBan(t, store, edge.Ban{UserID: 1001, TTL: time.Minute})
	mustBan(t, store, edge.Ban{IP: addr.String()})
	for i, c := range gateways {
		waitFor(t, time.Second, fmt.Sprintf("gateway %d sees the bans", i), func() bool {
			now := time.Now()
			return c.UserBanned(1001, now) && c.IPBanned(addr, now)
		})
	}

	ctx := context.Background()
	if err := store.Unban(ctx, edge.Ban{UserID: 1001}); err != nil {
		t.Fatal(err)
	}
	if err := store.Unban(ctx, edge.Ban{IP: addr.String()}); err != nil {
		t.Fatal(err)
	}
	for i, c := range gateways {
		waitFor(t, time.Second, fmt.Sprintf("gateway %d sees the bans lifted", i), func() bool {
			now := time.Now()
			return !c.UserBanned(1001, now) && !c.IPBanned(addr, now)
		})
	}
}

// A change whose message was lost still applies, through the periodic
// reload.
func TestBanCacheReloadsWithoutMessage(t *testing.T) {
	store, client, prefix := newStore(t)
	c := runCache(t, store)
	set := client.B().Hset().Key(prefix+":bans").FieldValue().FieldValue("u:5", "0").Build()
	if err := client.Do(context.Background(), set).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "unannounced ban applied", func() bool { return c.UserBanned(5, time.Now()) })
}

func TestAutoBanner(t *testing.T) {
	store, _, _ := newStore(t)
	const window = time.Minute
	a := edge.NewAutoBanner(3, window, time.Hour, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	now := time.Now()
	a.Record(1, now) // under the threshold
	a.Record(1, now)
	a.Record(2, now) // three, but spread over more than a window each
	a.Record(2, now.Add(window))
	a.Record(2, now.Add(2*window))
	a.Record(0, now) // no user: ignored
	a.Record(0, now)
	a.Record(0, now)
	for range 5 { // over the threshold: banned once
		a.Record(3, now)
	}
	// Strikes are handled in order, so once user 3 is banned the others
	// have been counted.
	var bans []edge.Ban
	waitFor(t, 2*time.Second, "user 3 auto-banned", func() bool {
		bans = mustList(t, store)
		return len(bans) > 0
	})
	if len(bans) != 1 || bans[0].UserID != 3 {
		t.Fatalf("bans = %+v, want user 3 only", bans)
	}
	if exp := bans[0].ExpiresAt; exp.Before(now.Add(time.Hour-time.Minute)) || exp.After(time.Now().Add(time.Hour)) {
		t.Errorf("ban expires at %s, want an hour from %s", exp, now)
	}
}

// Two gateways' auto-banners count one fleet: each sees half the
// threshold's 429s of a user, together they ban them.
func TestAutoBannerCountsTheFleet(t *testing.T) {
	store, _, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var gateways []*edge.AutoBanner
	for range 2 {
		a := edge.NewAutoBanner(4, time.Minute, time.Hour, store, nil)
		wg.Go(func() { a.Run(ctx) })
		gateways = append(gateways, a)
	}
	now := time.Now()
	for _, a := range gateways {
		a.Record(8, now) // 2 in all: not banned
		a.Record(9, now) // 4 in all: banned
		a.Record(9, now)
	}
	var bans []edge.Ban
	waitFor(t, 2*time.Second, "user 9 auto-banned", func() bool {
		bans = mustList(t, store)
		return len(bans) > 0
	})
	time.Sleep(3 * 100 * time.Millisecond) // a few flushes: nobody else gets banned
	if bans = mustList(t, store); len(bans) != 1 || bans[0].UserID != 9 {
		t.Fatalf("bans = %+v, want user 9 only", bans)
	}
}

func TestAutoBannerOff(t *testing.T) {
	store, _, _ := newStore(t)
	for name, a := range map[string]*edge.AutoBanner{
		"threshold 0": edge.NewAutoBanner(0, time.Minute, time.Hour, store, nil),
		"nil":         nil,
	} {
		for range 100 {
			a.Record(1, time.Now())
		}
		a.Run(context.Background()) // returns at once
		if a.Dropped() != 0 {
			t.Errorf("%s: dropped %d", name, a.Dropped())
		}
	}
	if bans := mustList(t, store); len(bans) != 0 {
		t.Fatalf("bans = %+v", bans)
	}
}

func TestAutoBannerRecordNeverBlocks(t *testing.T) {
	store, _, _ := newStore(t)
	a := edge.NewAutoBanner(1_000_000, time.Minute, time.Hour, store, nil)
	const n = 10_000
	for i := range n { // Run is not running: nothing drains the queue
		a.Record(int64(i+1), time.Now())
	}
	if d := a.Dropped(); d == 0 || d >= n {
		t.Fatalf("dropped %d of %d with nobody draining", d, n)
	}
}

func BenchmarkBanCache(b *testing.B) {
	store, _, _ := newStore(b)
	c := runCache(b, store)
	for i := range 100 {
		mustBan(b, store, edge.Ban{UserID: int64(i + 1)})
		mustBan(b, store, edge.Ban{IP: fmt.Sprintf("198.51.100.%d", i)})
	}
	banned := netip.MustParseAddr("198.51.100.50")
	waitFor(b, 2*time.Second, "bans loaded", func() bool {
		return c.UserBanned(100, time.Now()) && c.IPBanned(banned, time.Now())
	})
	now := time.Now()
	free := netip.MustParseAddr("203.0.113.9")
	b.Run("user", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			id := int64(0)
			for pb.Next() {
				id++
				c.UserBanned(id%200, now)
			}
		})
	})
	b.Run("ip-banned", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.IPBanned(banned, now)
		}
	})
	b.Run("ip-free", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.IPBanned(free, now)
		}
	})
}

func BenchmarkAutoBannerRecord(b *testing.B) {
	store, _, _ := newStore(b)
	a := edge.NewAutoBanner(1_000_000, time.Minute, time.Hour, store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		a.Record(42, now)
	}
}
