package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

const (
	// pathExpLen and pathMACLen are the parts of a decoded path token: the
	// expiry in unix seconds, big-endian, then the truncated MAC. 16 bytes of
	// HMAC-SHA256 leave 2^128 guesses to forge one, far beyond any rate limit.
	pathExpLen = 8
	pathMACLen = 16
	pathRawLen = pathExpLen + pathMACLen

	// PathTokenLen is the length of a path token: 24 bytes in unpadded
	// URL-safe base64, so a token needs no escaping in a query string. 24
	// bytes are exactly 32 characters: every token has one spelling, and no
	// character can change without changing the bytes.
	PathTokenLen = pathRawLen / 3 * 4

	// pathKeyLabel separates the path-token key from whatever else the
	// secret given to NewPathSigner is used for (shopper JWTs, say).
	pathKeyLabel = "flashgate path token v1"
)

// PathSigner issues and checks hidden buy-path tokens: a token names one
// user, one item and an expiry (the end of the sale) and is worthless for any
// other user or item, or after it expires. Tokens are not stored anywhere;
// every gateway holding the same secret checks them.
type PathSigner struct {
	pool sync.Pool // of *pathMAC
}

// pathMAC is a keyed HMAC with scratch space, pooled so that Verify
// allocates nothing: buffers passed to a hash.Hash escape to the heap, so
// they live here rather than on Verify's stack.
type pathMAC struct {
	h   hash.Hash
	msg [24]byte // user id, item id, expiry
	sum [sha256.Size]byte
	raw [pathRawLen]byte
}

// NewPathSigner returns a signer keyed by secret, which it copies. Tokens are
// signed with a key derived from secret, so the same secret may also sign
// other things. secret should be at least 32 random bytes.
func NewPathSigner(secret []byte) *PathSigner {
	derive := hmac.New(sha256.New, secret)
	derive.Write([]byte(pathKeyLabel))
	key := derive.Sum(nil)
	s := &PathSigner{}
	s.pool.New = func() any { return &pathMAC{h: hmac.New(sha256.New, key)} }
	return s
}

// Issue returns the path token of userID for itemID, valid until saleEnd
// (rounded up to the second).
func (s *PathSigner) Issue(userID, itemID int64, saleEnd time.Time) string {
	exp := saleEnd.Unix()
	if saleEnd.Nanosecond() > 0 {
		exp++
	}
	m := s.pool.Get().(*pathMAC)
	defer s.pool.Put(m)
	binary.BigEndian.PutUint64(m.raw[:pathExpLen], uint64(exp))
	m.compute(userID, itemID, exp)
	copy(m.raw[pathExpLen:], m.sum[:pathMACLen])
	return base64.RawURLEncoding.EncodeToString(m.raw[:])
}

// Verify reports whether token is the path token of userID for itemID and
// has not expired at now. Tampered, truncated, padded or otherwise malformed
// tokens and tokens of another user or item are all false. The MAC is
// compared in constant time. Verify allocates nothing.
func (s *PathSigner) Verify(token []byte, userID, itemID int64, now time.Time) bool {
	if len(token) != PathTokenLen {
		return false
	}
	m := s.pool.Get().(*pathMAC)
	defer s.pool.Put(m)
	if n, err := base64.RawURLEncoding.Decode(m.raw[:], token); err != nil || n != pathRawLen {
		return false
	}
	exp := int64(binary.BigEndian.Uint64(m.raw[:pathExpLen]))
	if now.Unix() >= exp {
		return false
	}
	m.compute(userID, itemID, exp)
	return hmac.Equal(m.sum[:pathMACLen], m.raw[pathExpLen:])
}

// compute sets m.sum to the MAC of (userID, itemID, exp).
func (m *pathMAC) compute(userID, itemID, exp int64) {
	binary.BigEndian.PutUint64(m.msg[0:8], uint64(userID))
	binary.BigEndian.PutUint64(m.msg[8:16], uint64(itemID))
	binary.BigEndian.PutUint64(m.msg[16:24], uint64(exp))
	m.h.Reset()
	m.h.Write(m.msg[:])
	m.h.Sum(m.sum[:0])
}
