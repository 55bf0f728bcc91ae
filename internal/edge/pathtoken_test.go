package edge_test

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/edge"
)

// fuzzSecret is the secret of the fuzz target; its seed corpus holds tokens
// signed with it.
const fuzzSecret = "flashgate-fuzz-secret-0123456789abcdef"

func TestPathToken(t *testing.T) {
	s := edge.NewPathSigner([]byte("0123456789abcdef0123456789abcdef"))
	saleEnd := t0.Add(time.Hour)
	now := t0.Add(time.Minute)
	tok := s.Issue(42, 7, saleEnd)
	if len(tok) != edge.PathTokenLen {
		t.Fatalf("token %q has length %d, want %d", tok, len(tok), edge.PathTokenLen)
	}
	if tok != s.Issue(42, 7, saleEnd) {
		t.Fatal("Issue is not deterministic")
	}

	if !s.Verify([]byte(tok), 42, 7, now) {
		t.Fatal("valid token rejected")
	}
	if !s.Verify([]byte(tok), 42, 7, saleEnd.Add(-time.Second)) {
		t.Fatal("valid token rejected in the last second of the sale")
	}
	other := edge.NewPathSigner([]byte("another secret, another deployment"))
	rejects := map[string]func() bool{
		"missing":        func() bool { return s.Verify(nil, 42, 7, now) },
		"another user's": func() bool { return s.Verify([]byte(tok), 43, 7, now) },
		"another item's": func() bool { return s.Verify([]byte(tok), 42, 8, now) },
		"expired":        func() bool { return s.Verify([]byte(tok), 42, 7, saleEnd) },
		"long expired":   func() bool { return s.Verify([]byte(tok), 42, 7, saleEnd.Add(24*time.Hour)) },
		"another secret": func() bool { return other.Verify([]byte(tok), 42, 7, now) },
		"truncated":      func() bool { return s.Verify([]byte(tok[:len(tok)-1]), 42, 7, now) },
		"padded":         func() bool { return s.Verify([]byte(tok+"="), 42, 7, now) },
		"garbage":        func() bool { return s.Verify([]byte(strings.Repeat("!", len(tok))), 42, 7, now) },
		"std base64": func() bool {
			return s.Verify([]byte(strings.NewReplacer("-", "+", "_", "/").Replace(tok)), 42, 7, now)
		},
		"expiry pushed back": func() bool {
			raw, _ := base64.RawURLEncoding.DecodeString(tok)
			binary.BigEndian.PutUint64(raw, uint64(saleEnd.Add(time.Hour).Unix()))
			return s.Verify([]byte(base64.RawURLEncoding.EncodeToString(raw)), 42, 7, saleEnd)
		},
	}
	for name, verify := range rejects {
		if verify() {
			t.Errorf("%s token accepted", name)
		}
	}
	for i := range len(tok) {
		b := []byte(tok)
		b[i] = flip(b[i])
		if s.Verify(b, 42, 7, now) {
			t.Errorf("token with character %d changed (%q) accepted", i, b)
		}
	}
}

// flip returns another character of the URL-safe base64 alphabet.
func flip(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func TestPathTokenExpiryRoundsUp(t *testing.T) {
	s := edge.NewPathSigner([]byte("0123456789abcdef0123456789abcdef"))
	saleEnd := t0.Add(1500 * time.Millisecond)
	tok := []byte(s.Issue(1, 2, saleEnd))
	if !s.Verify(tok, 1, 2, saleEnd) {
		t.Error("token dead before the end of the sale's last second")
	}
	if s.Verify(tok, 1, 2, t0.Add(2*time.Second)) {
		t.Error("token alive after the sale")
	}
}

func FuzzPathVerify(f *testing.F) {
	s := edge.NewPathSigner([]byte(fuzzSecret))
	f.Add([]byte(s.Issue(42, 7, time.Unix(2_000_000_000, 0))), int64(42), int64(7), int64(1_900_000_000))
	f.Fuzz(func(t *testing.T, token []byte, userID, itemID, now int64) {
		if !s.Verify(token, userID, itemID, time.Unix(now, 0)) {
			return
		}
		// Accepted: it must be exactly the token Issue gives for its expiry.
		raw, err := base64.RawURLEncoding.DecodeString(string(token))
		if err != nil || len(raw) < 8 {
			t.Fatalf("accepted token %q does not decode", token)
		}
		exp := time.Unix(int64(binary.BigEndian.Uint64(raw)), 0)
		if want := s.Issue(userID, itemID, exp); string(token) != want {
			t.Fatalf("accepted %q, but Issue gives %q", token, want)
		}
	})
}

func BenchmarkPathVerify(b *testing.B) {
	s := edge.NewPathSigner([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Now()
	tok := []byte(s.Issue(42, 7, now.Add(time.Hour)))
	for _, bc := range []struct {
		name  string
		token []byte
		user  int64
	}{
		{"valid", tok, 42},
		{"another-user", tok, 43},
		{"wrong-length", tok[:10], 42},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Verify(bc.token, bc.user, 7, now)
			}
		})
	}
}
