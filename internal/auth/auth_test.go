package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func sign(header, claims string, key []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

func TestMintVerify(t *testing.T) {
	s := auth.NewSigner(secret)
	now := time.Now().Truncate(time.Second) // Mint writes the present as iat
	tok := s.Mint(9223372036854775807, now.Add(time.Hour))
	user, err := s.Verify([]byte(tok), now)
	if err != nil || user != 9223372036854775807 {
		t.Fatalf("verify: %d %v", user, err)
	}
	if _, err := s.Verify([]byte(tok), now.Add(time.Hour)); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("at exp: %v", err)
	}
	if _, err := auth.NewSigner([]byte("another secret, also 32 bytes!!!")).Verify([]byte(tok), now); !errors.Is(err, auth.ErrSignature) {
		t.Fatalf("other secret: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s := auth.NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name, token string
		want        error
	}{
		{"empty", "", auth.ErrMalformed},
		{"one part", "abc", auth.ErrMalformed},
		{"two parts", "abc.def", auth.ErrMalformed},
		{"alg none", sign(`{"alg":"none"}`, `{"sub":"1","exp":1900000000}`, secret), auth.ErrAlgorithm},
		{"alg HS384", sign(`{"alg":"HS384"}`, `{"sub":"1","exp":1900000000}`, secret), auth.ErrAlgorithm},
		{"alg missing", sign(`{"typ":"JWT"}`, `{"sub":"1","exp":1900000000}`, secret), auth.ErrAlgorithm},
		{"alg escaped", sign(`{"alg":"HS\u0032256"}`, `{"sub":"1","exp":1900000000}`, secret), auth.ErrAlgorithm},
		{"header not json", sign(`alg`, `{"sub":"1","exp":1900000000}`, secret), auth.ErrMalformed},
		{"no exp", sign(`{"alg":"HS256"}`, `{"sub":"1"}`, secret), auth.ErrMalformed},
		{"exp string", sign(`{"alg":"HS256"}`, `{"sub":"1","exp":"1900000000"}`, secret), auth.ErrMalformed},
		{"sub number", sign(`{"alg":"HS256"}`, `{"sub":1,"exp":1900000000}`, secret), auth.ErrBadSubject},
		{"sub zero", sign(`{"alg":"HS256"}`, `{"sub":"0","exp":1900000000}`, secret), auth.ErrBadSubject},
		{"sub leading zero", sign(`{"alg":"HS256"}`, `{"sub":"01","exp":1900000000}`, secret), auth.ErrBadSubject},
		{"sub too big", sign(`{"alg":"HS256"}`, `{"sub":"9223372036854775808","exp":1900000000}`, secret), auth.ErrBadSubject},
		{"sub missing", sign(`{"alg":"HS256"}`, `{"exp":1900000000}`, secret), auth.ErrBadSubject},
		{"expired", sign(`{"alg":"HS256"}`, `{"sub":"1","exp":1700000000}`, secret), auth.ErrExpired},
		{"trailing garbage", sign(`{"alg":"HS256"}`, `{"sub":"1","exp":1900000000}x`, secret), auth.ErrMalformed},
		{"bad signature", sign(`{"alg":"HS256"}`, `{"sub":"1","exp":1900000000}`, []byte("x")), auth.ErrSignature},
	}
	for _, c := range cases {
		if _, err := s.Verify([]byte(c.token), now); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestVerifyAcceptsOtherClaims(t *testing.T) {
	s := auth.NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	tok := sign(`{"typ":"JWT", "alg":"HS256", "kid":"k1"}`,
		`{"iss":"load\"tester","aud":["a",{"b":[1,2]}],"sub":"42","exp":1800003600.5,"nbf":null,"admin":false}`, secret)
	if user, err := s.Verify([]byte(tok), now); err != nil || user != 42 {
		t.Fatalf("verify: %d %v", user, err)
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	s := auth.NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	tok := []byte(s.Mint(42, now.Add(time.Hour)))
	s.Verify(tok, now) // warm the pool
	if n := testing.AllocsPerRun(100, func() { s.Verify(tok, now) }); n > 0 && !raceEnabled {
		t.Fatalf("Verify allocates %v times", n)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := auth.NewSigner(secret)
	now := time.Now()
	tok := []byte(s.Mint(42, now.Add(time.Hour)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Verify(tok, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
