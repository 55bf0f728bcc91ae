package edge

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	// limiterShards is the number of independently locked parts of a Limiter.
	// A power of two well above the core count keeps two cores from waiting on
	// the same mutex except by chance.
	limiterShards = 256

	// defaultIdle is how long a bucket lives unused when NewLimiter is given
	// no idle time.
	defaultIdle = time.Minute

	// shrinkFloor is the map size under which a shard never bothers to
	// rebuild its map after a sweep.
	shrinkFloor = 1024
)

// Limiter is a set of token buckets, one per key (a user id, or an IP hashed
// with [HashIP] or [HashAddr]), all with the same rate and a burst equal to
// the rate; in a fleet of gateways, this process's share of them (see
// [Limiter.SetFleet]). The zero value is not usable; a nil *Limiter allows
// everything.
//
// Buckets are created on a key's first request and dropped by [Limiter.Sweep]
// once idle and full again, so memory follows the number of keys seen in the
// last idle period, not the number ever seen.
type Limiter struct {
	limit  rate.Limit // of the whole fleet
	burst  int
	idle   time.Duration
	share  atomic.Pointer[share] // this process's part of limit and burst
	shares struct {              // every share made so far, by fleet size
		sync.Mutex
		m map[int]*share
	}
	shards [limiterShards]limiterShard
}

// share is the part of a Limiter's rate and burst that one gateway of a
// fleet of n enforces. It is replaced, never changed: a bucket that holds
// another pointer than the Limiter's is reconfigured on its next use.
type share struct {
	n     int
	limit rate.Limit
	burst int
}

// limiterShard is one independently locked part of a Limiter. It is padded
// to a cache line so that cores working on neighbouring shards do not
// invalidate each other's lines.
type limiterShard struct {
	mu      sync.Mutex
	buckets map[uint64]*bucket
	peak    int // largest len(buckets) since the map was last rebuilt
	_       [64 - 8 - 8 - 8]byte
}

// bucket is one key's token bucket. Both fields are guarded by the shard's
// mutex; rate.Limiter's own mutex is then never contended.
type bucket struct {
	lim   rate.Limiter
	last  int64  // unix nanoseconds of the last Allow
	share *share // what lim is configured for
}

// NewLimiter returns a Limiter that lets each key make ratePerSec requests a
// second with a burst of ratePerSec (at least 1). A rate of 0 or less turns
// the limit off: Allow always answers true and nothing is stored. Buckets
// unused for idle (one minute when idle is 0 or less) are dropped by Sweep.
func NewLimiter(ratePerSec float64, idle time.Duration) *Limiter {
	if idle <= 0 {
		idle = defaultIdle
	}
	l := &Limiter{idle: idle}
	if ratePerSec <= 0 || math.IsNaN(ratePerSec) {
		return l
	}
	l.limit = rate.Limit(ratePerSec)
	l.burst = max(1, int(ratePerSec))
	l.SetFleet(1)
	for i := range l.shards {
		l.shards[i].buckets = make(map[uint64]*bucket)
	}
	return l
}

// Allow takes one token from key's bucket at time now. When the bucket is
// empty it answers false and how long to wait before a token is available,
// rounded up to whole seconds and at least one second, ready for the
// Retry-After header. A new key starts with a full bucket.
//
// Allow allocates only on a key's first request, never when it rejects.
func (l *Limiter) Allow(key uint64, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil || l.limit == 0 {
		return true, 0
	}
	s := &l.shards[shardIndex(key)]
	s.mu.Lock()
	b := s.buckets[key]
	if b == nil {
		b = l.newBucket()
		s.buckets[key] = b
		s.peak = max(s.peak, len(s.buckets))
	}
	b.last = now.UnixNano()
	sh := l.share.Load()
	if b.share != sh {
		// The fleet grew or shrank since this bucket was last used.
		b.lim.SetLimitAt(now, sh.limit)
		b.lim.SetBurstAt(now, sh.burst)
		b.share = sh
	}
	if b.lim.AllowN(now, 1) {
		s.mu.Unlock()
		return true, 0
	}
	tokens := b.lim.TokensAt(now)
	s.mu.Unlock()
	return false, retryAfterFor(tokens, sh.limit)
}

// SetFleet makes the Limiter enforce its part of a limit that holds for a
// fleet of n gateways (n below 1 counts as 1): 1/n of the rate, and 1/n of
// the burst rounded down but at least 1. Behind a load balancer that spreads
// a client's requests over the gateways the parts add up to the limit; one
// that sends a client to one gateway only gives them 1/n of it, never more
// (docs/edge.md). Buckets take the new part on their next use: SetFleet
// costs nothing per key, and Allow still allocates nothing.
func (l *Limiter) SetFleet(n int) {
	if l == nil || l.limit == 0 {
		return
	}
	n = max(1, n)
	l.shares.Lock()
	defer l.shares.Unlock()
	sh := l.shares.m[n]
	if sh == nil {
		// Kept: a fleet size comes back (a gateway restarting), and the
		// number of sizes is small.
		sh = &share{n: n, limit: l.limit / rate.Limit(n), burst: max(1, l.burst/n)}
		if l.shares.m == nil {
			l.shares.m = map[int]*share{}
		}
		l.shares.m[n] = sh
	}
	l.share.Store(sh)
}

// Fleet is the fleet size the Limiter enforces its part for (see SetFleet).
func (l *Limiter) Fleet() int {
	if l == nil || l.limit == 0 {
		return 1
	}
	return l.share.Load().n
}

// newBucket returns a full bucket. rate.NewLimiter would return a Limiter
// to copy, with its mutex; configuring the zero value in place avoids that.
// Both setters are applied at the zero time, so the first AllowN refills the
// bucket from year 1 and finds it full.
func (l *Limiter) newBucket() *bucket {
	sh := l.share.Load()
	b := &bucket{share: sh}
	b.lim.SetBurstAt(time.Time{}, sh.burst)
	b.lim.SetLimitAt(time.Time{}, sh.limit)
	return b
}

// retryAfterFor is the wait, in whole seconds and at least one, until a
// bucket holding tokens refills to one token at limit tokens per second.
func retryAfterFor(tokens float64, limit rate.Limit) time.Duration {
	secs := math.Ceil((1 - tokens) / float64(limit))
	if !(secs >= 1) { // also catches NaN
		secs = 1
	}
	return time.Duration(secs) * time.Second
}

// Sweep drops every bucket unused for the idle time given to NewLimiter and
// full again at now: such a bucket behaves exactly like the new one a later
// request would create. A shard whose map has shrunk to a quarter of its peak
// is rebuilt, as Go maps do not give memory back by themselves. Sweep locks
// one shard at a time, so requests to other shards go on meanwhile.
func (l *Limiter) Sweep(now time.Time) {
	if l == nil || l.limit == 0 {
		return
	}
	cutoff := now.UnixNano() - int64(l.idle)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for key, b := range s.buckets {
			if b.last <= cutoff && b.lim.TokensAt(now) >= float64(b.lim.Burst()) {
				delete(s.buckets, key)
			}
		}
		if n := len(s.buckets); s.peak > shrinkFloor && n < s.peak/4 {
			m := make(map[uint64]*bucket, n)
			for key, b := range s.buckets {
				m[key] = b
			}
			s.buckets = m
			s.peak = n
		}
		s.mu.Unlock()
	}
}

// Run sweeps every idle period until ctx is done. Without it, or without
// calling Sweep some other way, a Limiter keeps one bucket for every key it
// has ever seen.
func (l *Limiter) Run(ctx context.Context) {
	if l == nil || l.limit == 0 {
		return
	}
	t := time.NewTicker(l.idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.Sweep(now)
		}
	}
}

// Len is the number of buckets held: the keys seen and not yet swept.
func (l *Limiter) Len() int {
	if l == nil || l.limit == 0 {
		return 0
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// shardIndex spreads keys over the shards by Fibonacci hashing, so that
// consecutive user ids land on different shards.
func shardIndex(key uint64) uint64 {
	return (key * 0x9E3779B97F4A7C15) >> (64 - 8)
}

// FNV-1a 64-bit parameters.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// HashIP returns the limiter key of an IP address given as 4 or 16 bytes
// (a net.IP). An IPv4 address hashes the same in both forms. An IPv6
// address is keyed by its /64 (see [ClientNet]): only its first 8 bytes are
// hashed. It is 64-bit FNV-1a: distinct keys may collide and then share one
// bucket, which at worst rate-limits two clients together, about once in
// 2^64 pairs; nothing about a ban or a token depends on it. Other lengths
// are hashed as given.
func HashIP(ip []byte) uint64 {
	switch {
	case len(ip) == 16 && isV4Mapped(ip):
		ip = ip[12:]
	case len(ip) == 16:
		ip = ip[:8]
	}
	h := uint64(fnvOffset64)
	for _, c := range ip {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return h
}

// HashAddr is HashIP for a netip.Addr, with the same result for the same
// address; the zone of an IPv6 address is ignored.
func HashAddr(addr netip.Addr) uint64 {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		return HashIP(b[:])
	}
	b := addr.As16()
	return HashIP(b[:])
}

// ClientNet returns what one client is limited and banned by: an IPv4
// address itself, and for IPv6 the /64 network the address is in, as its
// first address (2001:db8:0:1::/64 for 2001:db8:0:1:a:b:c:d). An IPv6
// subscriber is normally handed a whole /64 (or more), and every host of it
// picks addresses at will: keyed by the full address, one shopper would
// have 2^64 buckets and could walk around any ban. An IPv4-mapped address
// is its IPv4 address; a zone is dropped. It allocates nothing.
func ClientNet(addr netip.Addr) netip.Addr {
	addr = canonAddr(addr)
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// isV4Mapped reports whether a 16-byte address is an IPv4-mapped IPv6
// address (::ffff:a.b.c.d).
func isV4Mapped(ip []byte) bool {
	for _, c := range ip[:10] {
		if c != 0 {
			return false
		}
	}
	return ip[10] == 0xff && ip[11] == 0xff
}
