package edge_test

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/edge"
)

var t0 = time.Date(2030, 11, 11, 0, 0, 0, 0, time.UTC)

// allowN calls Allow n times at now and returns how many were allowed.
func allowN(l *edge.Limiter, key uint64, n int, now time.Time) int {
	ok := 0
	for range n {
		if allowed, _ := l.Allow(key, now); allowed {
			ok++
		}
	}
	return ok
}

func TestLimiterBurstThen429(t *testing.T) {
	l := edge.NewLimiter(5, time.Minute)
	if got := allowN(l, 1, 5, t0); got != 5 {
		t.Fatalf("first burst: %d of 5 allowed", got)
	}
	ok, retry := l.Allow(1, t0)
	if ok {
		t.Fatal("6th request in the same instant allowed")
	}
	// One token comes back in 200ms; the header says whole seconds.
	if retry != time.Second {
		t.Fatalf("retryAfter = %s, want 1s", retry)
	}
}

func TestLimiterRetryAfterSlowRate(t *testing.T) {
	l := edge.NewLimiter(0.25, time.Minute) // burst 1, a token every 4s
	if ok, _ := l.Allow(1, t0); !ok {
		t.Fatal("first request refused")
	}
	if ok, retry := l.Allow(1, t0.Add(time.Second)); ok || retry != 3*time.Second {
		t.Fatalf("Allow 1s later = %v, %s; want false, 3s", ok, retry)
	}
	if ok, retry := l.Allow(1, t0.Add(3900*time.Millisecond)); ok || retry != time.Second {
		t.Fatalf("Allow 3.9s later = %v, %s; want false, 1s (rounded up)", ok, retry)
	}
	if ok, _ := l.Allow(1, t0.Add(4*time.Second)); !ok {
		t.Fatal("refused after the refill")
	}
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	l := edge.NewLimiter(3, time.Minute)
	allowN(l, 1, 10, t0)
	if ok, _ := l.Allow(1, t0); ok {
		t.Fatal("key 1 not limited")
	}
	for key := uint64(2); key < 100; key++ {
		if got := allowN(l, key, 3, t0); got != 3 {
			t.Fatalf("key %d: %d of 3 allowed after key 1 was drained", key, got)
		}
	}
}

func TestLimiterRefill(t *testing.T) {
	l := edge.NewLimiter(5, time.Minute)
	allowN(l, 1, 5, t0)
	if got := allowN(l, 1, 5, t0.Add(200*time.Millisecond)); got != 1 {
		t.Fatalf("200ms later: %d allowed, want 1", got)
	}
	if got := allowN(l, 1, 10, t0.Add(10*time.Second)); got != 5 {
		t.Fatalf("10s later: %d allowed, want the burst of 5 and no more", got)
	}
}

func TestLimiterRateZeroDisables(t *testing.T) {
	for name, l := range map[string]*edge.Limiter{
		"rate 0": edge.NewLimiter(0, time.Minute),
		"nil":    nil,
	} {
		if got := allowN(l, 1, 1000, t0); got != 1000 {
			t.Errorf("%s: %d of 1000 allowed", name, got)
		}
		l.Sweep(t0)
		if n := l.Len(); n != 0 {
			t.Errorf("%s: Len = %d", name, n)
		}
	}
}

func TestLimiterSweepBoundsMemory(t *testing.T) {
	const keys = 50_000
	idle := time.Minute
	l := edge.NewLimiter(5, idle)
	for key := range uint64(keys) {
		l.Allow(key, t0)
	}
	if n := l.Len(); n != keys {
		t.Fatalf("Len = %d, want %d", n, keys)
	}
	l.Allow(keys, t0.Add(idle)) // one key stays busy

	l.Sweep(t0.Add(idle / 2))
	if n := l.Len(); n != keys+1 {
		t.Fatalf("after a sweep before the idle time: Len = %d, want %d", n, keys+1)
	}
	l.Sweep(t0.Add(idle + time.Second))
	if n := l.Len(); n != 1 {
		t.Fatalf("after a sweep past the idle time: Len = %d, want 1 (the busy key)", n)
	}
	// A swept key starts again with a full bucket.
	if got := allowN(l, 7, 10, t0.Add(2*idle)); got != 5 {
		t.Fatalf("swept key: %d allowed, want 5", got)
	}
}

func TestLimiterSweepKeepsBucketsNotYetFull(t *testing.T) {
	// Idle shorter than the refill: a drained bucket must survive the
	// sweep, or dropping it would hand the key a fresh burst.
	l := edge.NewLimiter(1, 100*time.Millisecond)
	allowN(l, 1, 1, t0)
	l.Sweep(t0.Add(500 * time.Millisecond))
	if l.Len() != 1 {
		t.Fatal("a bucket still refilling was swept")
	}
	if ok, _ := l.Allow(1, t0.Add(500*time.Millisecond)); ok {
		t.Fatal("the drained key was allowed before its refill")
	}
	l.Sweep(t0.Add(2 * time.Second))
	if l.Len() != 0 {
		t.Fatal("a full idle bucket survived the sweep")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := edge.NewLimiter(100, time.Minute)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if ok, _ := l.Allow(42, t0); ok {
					allowed.Add(1)
				}
				l.Allow(uint64(1_000_000+g*1000+i), t0) // other keys, other shards
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			l.Sweep(t0)
		}
	})
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Fatalf("%d requests allowed in one instant, want the burst of 100", got)
	}
}

func TestHashIP(t *testing.T) {
	v4 := net.ParseIP("203.0.113.9") // 16-byte form
	if edge.HashIP(v4) != edge.HashIP(v4.To4()) {
		t.Error("an IPv4 address hashes differently in its 4- and 16-byte forms")
	}
	if edge.HashIP(v4) != edge.HashAddr(netip.MustParseAddr("203.0.113.9")) {
		t.Error("HashIP and HashAddr differ")
	}
	if edge.HashAddr(netip.MustParseAddr("::ffff:203.0.113.9")) != edge.HashAddr(netip.MustParseAddr("203.0.113.9")) {
		t.Error("HashAddr of an IPv4-mapped address differs from the IPv4 address")
	}
	if edge.HashIP(v4) == edge.HashIP(net.ParseIP("203.0.113.10")) {
		t.Error("neighbouring addresses collide")
	}
	v6 := netip.MustParseAddr("2001:db8::1")
	if edge.HashAddr(v6) != edge.HashIP(net.ParseIP("2001:db8::1")) {
		t.Error("HashIP and HashAddr differ for IPv6")
	}
	// One IPv6 client is its /64.
	if edge.HashAddr(v6) != edge.HashAddr(netip.MustParseAddr("2001:db8::ffff:ffff:ffff:ffff")) {
		t.Error("two addresses of one /64 have different keys")
	}
	if edge.HashAddr(v6) == edge.HashAddr(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Error("neighbouring /64s collide")
	}
	if edge.HashAddr(v6) != edge.HashAddr(netip.MustParseAddr("2001:db8::")) {
		t.Error("an address and its /64's first address have different keys")
	}
}

func TestClientNet(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":                      "203.0.113.9",
		"::ffff:203.0.113.9":               "203.0.113.9",
		"2001:db8:1:2:3:4:5:6":             "2001:db8:1:2::",
		"2001:db8:1:2::":                   "2001:db8:1:2::",
		"fe80::1:2%eth0":                   "fe80::",
		"::1":                              "::",
		"2001:db8:ffff:ffff:ffff:ffff::ff": "2001:db8:ffff:ffff::",
	} {
		if got := edge.ClientNet(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("ClientNet(%s) = %s, want %s", in, got, want)
		}
	}
}

// An IPv6 shopper who hops between the addresses of their /64 still has
// one bucket; the next /64 has its own.
func TestLimiterKeysIPv6ByNetwork(t *testing.T) {
	l := edge.NewLimiter(2, 0)
	now := time.Now()
	for i, ip := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::3"} {
		ok, _ := l.Allow(edge.HashAddr(netip.MustParseAddr(ip)), now)
		if want := i < 2; ok != want {
			t.Fatalf("request %d from %s: allowed %v, want %v", i, ip, ok, want)
		}
	}
	if ok, _ := l.Allow(edge.HashAddr(netip.MustParseAddr("2001:db8:0:1::1")), now); !ok {
		t.Fatal("the next /64 shares the bucket")
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate float64
	}{
		{"accept", 1e12},
		{"reject", 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const keys = 1 << 12
			l := edge.NewLimiter(bc.rate, time.Minute)
			now := time.Now()
			for key := range uint64(keys) {
				allowN(l, key, 2, now) // create, and drain at rate 1
			}
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				key := next.Add(1) * 7919
				for pb.Next() {
					key++
					l.Allow(key%keys, now)
				}
			})
		})
	}
}

func BenchmarkHashAddr(b *testing.B) {
	addr := netip.MustParseAddr("203.0.113.9")
	b.ReportAllocs()
	for b.Loop() {
		edge.HashAddr(addr)
	}
}

// A limiter of a fleet of n enforces 1/n of the rate and of the burst, and
// an existing bucket follows a change of the fleet on its next use.
func TestLimiterFleetShare(t *testing.T) {
	l := edge.NewLimiter(6, 0)
	l.SetFleet(3)
	if l.Fleet() != 3 {
		t.Fatalf("Fleet() = %d", l.Fleet())
	}
	now := time.Now()
	allowed := func(at time.Time, n int) int {
		got := 0
		for range n {
			if ok, _ := l.Allow(1, at); ok {
				got++
			}
		}
		return got
	}
	if got := allowed(now, 10); got != 2 {
		t.Fatalf("burst of a third of 6: %d", got)
	}
	_, wait := l.Allow(1, now)
	if wait != time.Second { // 2 tokens a second: the next one in half a second, rounded up
		t.Fatalf("Retry-After %v", wait)
	}
	if got := allowed(now.Add(time.Second), 10); got != 2 {
		t.Fatalf("a second at a third of 6/s: %d", got)
	}
	l.SetFleet(1) // the others left: this bucket now fills at 6/s up to 6
	if got := allowed(now.Add(3*time.Second), 10); got != 2 {
		t.Fatalf("the tokens held when the fleet shrank: %d, want no windfall", got)
	}
	if got := allowed(now.Add(4*time.Second), 10); got != 6 {
		t.Fatalf("a second after the fleet shrank to one: %d", got)
	}
	l.SetFleet(100) // more gateways than the burst: each still lets one through
	if got := allowed(now.Add(60*time.Second), 10); got != 1 {
		t.Fatalf("in a fleet of 100: %d", got)
	}
	l.SetFleet(0)
	if l.Fleet() != 1 {
		t.Fatalf("a fleet of 0 is one: %d", l.Fleet())
	}
	var off *edge.Limiter
	off.SetFleet(3) // a nil limiter allows everything, whatever the fleet
	if ok, _ := off.Allow(1, now); !ok || off.Fleet() != 1 {
		t.Fatal("nil limiter")
	}
}
