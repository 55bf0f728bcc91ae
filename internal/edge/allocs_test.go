//go:build !race

// The race detector makes sync.Pool drop items at random, and so Verify
// allocate: the allocation counts only hold without it.

package edge_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/edge"
)

// The calls a gateway makes per request allocate nothing. The benchmarks
// report the same; this test keeps a change that breaks it from passing.
func TestHotPathsDoNotAllocate(t *testing.T) {
	now := time.Now()
	limiter := edge.NewLimiter(1, time.Minute)
	limiter.Allow(1, now) // the bucket exists; the next calls reject
	fleetLimiter := edge.NewLimiter(2, time.Minute)
	fleetLimiter.SetFleet(3) // made once; switching back and forth then allocates nothing
	fleetLimiter.Allow(1, now)
	fleets := []int{2, 3}
	resolver := newResolver(t, "10.0.0.0/8")
	proxy := netip.MustParseAddr("10.0.0.5")
	xff := []byte("6.6.6.6, 198.51.100.7, 10.1.1.1")
	signer := edge.NewPathSigner([]byte("0123456789abcdef0123456789abcdef"))
	token := []byte(signer.Issue(42, 7, now.Add(time.Hour)))
	store, _, _ := newStore(t)
	cache := runCache(t, store)
	mustBan(t, store, edge.Ban{UserID: 42})
	waitFor(t, time.Second, "ban applied", func() bool { return cache.UserBanned(42, time.Now()) })
	banner := edge.NewAutoBanner(10, time.Minute, time.Hour, store, nil)
	addr := netip.MustParseAddr("203.0.113.9")
	addr6 := netip.MustParseAddr("2001:db8::1")
	mustBan(t, store, edge.Ban{IP: "2001:db8::/64"})
	waitFor(t, time.Second, "IPv6 ban applied", func() bool { return cache.IPBanned(addr6, time.Now()) })

	for name, f := range map[string]func(){
		"Limiter.Allow (reject)": func() { limiter.Allow(1, now) },
		// A bucket taking a new fleet share allocates nothing either.
		"Limiter.Allow (new fleet share)": func() {
			fleetLimiter.SetFleet(fleets[0])
			fleets[0], fleets[1] = fleets[1], fleets[0]
			fleetLimiter.Allow(1, now)
		},
		"HashAddr":                   func() { edge.HashAddr(addr) },
		"HashAddr (IPv6)":            func() { edge.HashAddr(addr6) },
		"ClientNet (IPv6)":           func() { edge.ClientNet(addr6) },
		"BanCache.IPBanned (IPv6)":   func() { cache.IPBanned(addr6, now) },
		"IPResolver.ClientIP":        func() { resolver.ClientIP(proxy, xff) },
		"PathSigner.Verify (valid)":  func() { signer.Verify(token, 42, 7, now) },
		"PathSigner.Verify (forged)": func() { signer.Verify(token, 43, 7, now) },
		"BanCache.UserBanned":        func() { cache.UserBanned(42, now) },
		"BanCache.IPBanned":          func() { cache.IPBanned(addr, now) },
		"AutoBanner.Record":          func() { banner.Record(42, now) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, n)
		}
	}
}
