package auth

import (
	"hash/maphash"
	"sync/atomic"
	"time"
)

// DefaultCacheSlots is the size of the gateway's verified-token cache: at
// most this many tokens are remembered, about 250 bytes each for a token of
// the usual size (maxTokenLen at worst, so never more than ~9 MiB).
const DefaultCacheSlots = 8192

// Cache remembers the claims of tokens whose signature verified, so that a
// shopper who sends the same token again (every retry during a sale, every
// request of a sold-out storm) costs a hash and a comparison instead of an
// HMAC and a parse. Verify answers exactly as Signer.Verify does: only what
// does not depend on the time (shape, header, signature, claims) is
// remembered, and the time rules (exp, nbf, the maximum lifetime) are
// applied to the remembered claims at every call. Tokens have no revocation
// of their own (a banned shopper is refused after the token, by the ban
// list), and a Signer's secret never changes, so nothing else can make a
// remembered token bad.
//
// It is a direct-mapped table of atomic pointers: a lookup is lock-free and
// a new token simply replaces the one in its slot, so memory is bounded by
// the number of slots whatever the traffic. Tokens that fail verification
// are not remembered: a flood of forged tokens pays the HMAC every time, as
// before, and evicts nothing.
//
// A Cache is safe for concurrent use.
type Cache struct {
	s     *Signer
	seed  maphash.Seed
	slots []atomic.Pointer[cachedToken]
	mask  uint64
}

// cachedToken is one remembered token, immutable once stored.
type cachedToken struct {
	hash  uint64
	token string
	c     claims
}

// NewCache returns a cache of s's verifications with room for n tokens (n
// is rounded up to a power of two; DefaultCacheSlots when n < 1).
func (s *Signer) NewCache(n int) *Cache {
	if n < 1 {
		n = DefaultCacheSlots
	}
	size := 1
	for size < n {
		size <<= 1
	}
	return &Cache{s: s, seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[cachedToken], size), mask: uint64(size - 1)}
}

// Verify checks token at now and returns its user id, as Signer.Verify
// does. A token seen before costs no allocation; a new, good one allocates
// its entry.
func (c *Cache) Verify(token []byte, now time.Time) (int64, error) {
	if len(token) == 0 || len(token) > maxTokenLen {
		return 0, ErrMalformed
	}
	h := maphash.Bytes(c.seed, token)
	slot := &c.slots[h&c.mask]
	// The bytes are compared only when the 64-bit keyed hash matches too,
	// which for another token happens by chance alone (the seed is random
	// and secret): how long the comparison takes tells someone guessing a
	// token nothing about a remembered one.
	if e := slot.Load(); e != nil && e.hash == h && e.token == string(token) {
		user, err := c.s.check(e.c, now)
		if err == ErrExpired {
			// It can only stay expired: give the slot back.
			slot.CompareAndSwap(e, nil)
		}
		return user, err
	}
	cl, err := c.s.claims(token)
	if err != nil {
		return 0, err
	}
	slot.Store(&cachedToken{hash: h, token: string(token), c: cl})
	return c.s.check(cl, now)
}
