package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

// TestCacheAnswersAsVerify: through the cache every token gets Verify's
// answer, the first time and every time after, and the time rules are
// applied at each call to a remembered token: one used before its nbf is
// good once the nbf passes, a good one turns expired at its exp, and one
// past the maximum lifetime at one instant is good later.
func TestCacheAnswersAsVerify(t *testing.T) {
	s := auth.NewSigner(secret)
	c := s.NewCache(4) // small: tokens share slots and evict each other
	now := time.Unix(1_800_000_000, 0)
	n := now.Unix()
	hour := int64(3600)
	tokens := map[string]string{
		"plain":       sign(header, claims("exp", n+hour), secret),
		"nbf ahead":   sign(header, claims("exp", n+2*hour, "nbf", n+hour), secret),
		"long":        sign(header, claims("exp", n+25*hour), secret),
		"expired":     sign(header, claims("exp", n-1), secret),
		"bad sig":     sign(header, claims("exp", n+hour), []byte("x")),
		"alg none":    sign(`{"alg":"none"}`, claims("exp", n+hour), secret),
		"malformed":   "abc.def",
		"sub missing": sign(header, `{"exp":1900000000}`, secret),
	}
	for _, at := range []time.Time{now, now, now.Add(time.Hour), now.Add(2 * time.Hour), now.Add(2 * time.Hour), now} {
		for name, tok := range tokens {
			want, wantErr := s.Verify([]byte(tok), at)
			got, err := c.Verify([]byte(tok), at)
			if got != want || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				t.Errorf("%s at %v: cache %d %v, Verify %d %v", name, at.Sub(now), got, err, want, wantErr)
			}
		}
	}
}

// TestCacheRemembersOnlyGoodSignatures: a token that differs from a
// remembered one in a byte of its signature is verified, not taken for it.
func TestCacheRemembersOnlyGoodSignatures(t *testing.T) {
	s := auth.NewSigner(secret)
	c := s.NewCache(1) // one slot: every token maps to it
	now := time.Unix(1_800_000_000, 0)
	tok := []byte(s.Mint(42, now.Add(time.Hour)))
	if user, err := c.Verify(tok, now); err != nil || user != 42 {
		t.Fatalf("good token: %d %v", user, err)
	}
	forged := append([]byte(nil), tok...)
	forged[len(forged)-2] ^= 1
	if _, err := c.Verify(forged, now); !errors.Is(err, auth.ErrSignature) {
		t.Fatalf("forged token: %v", err)
	}
	if user, err := c.Verify(tok, now); err != nil || user != 42 {
		t.Fatalf("good token again: %d %v", user, err)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	s := auth.NewSigner(secret)
	c := s.NewCache(0)
	now := time.Unix(1_800_000_000, 0)
	tok := []byte(s.Mint(42, now.Add(time.Hour)))
	c.Verify(tok, now)
	if n := testing.AllocsPerRun(100, func() { c.Verify(tok, now) }); n > 0 && !raceEnabled {
		t.Fatalf("a cache hit allocates %v times", n)
	}
}

// BenchmarkCacheVerify is BenchmarkVerify through the cache, the same token
// every time (a sold-out storm's retries).
func BenchmarkCacheVerify(b *testing.B) {
	s := auth.NewSigner(secret)
	c := s.NewCache(0)
	now := time.Now()
	tok := []byte(s.Mint(42, now.Add(time.Hour)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Verify(tok, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCacheVerifyFresh is the cache's worst case: a new token every
// call (a buy storm of fresh shoppers), each verified and then stored.
func BenchmarkCacheVerifyFresh(b *testing.B) {
	s := auth.NewSigner(secret)
	c := s.NewCache(0)
	now := time.Now()
	toks := make([][]byte, 1<<14)
	for i := range toks {
		toks[i] = []byte(s.Mint(int64(i+1), now.Add(time.Hour)))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Verify(toks[i&(len(toks)-1)], now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
