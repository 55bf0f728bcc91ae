package auth_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

// FuzzVerify feeds Verify arbitrary tokens and clocks. It must never panic,
// and a token it accepts must be genuine: three parts, the third the
// HS256 MAC of the first two under the secret, naming a positive user, not
// expired. Seeds are in testdata/fuzz/FuzzVerify (valid, expired, forged,
// alg none, nested and escaped claims, oversized, not base64).
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 30s ./internal/auth
func FuzzVerify(f *testing.F) {
	s := auth.NewSigner(secret)
	f.Fuzz(func(t *testing.T, token []byte, now int64) {
		user, err := s.Verify(token, time.Unix(now, 0))
		if err != nil {
			if user != 0 {
				t.Fatalf("rejected %q (%v) but returned user %d", token, err, user)
			}
			return
		}
		if user <= 0 {
			t.Fatalf("accepted %q for user %d", token, user)
		}
		parts := bytes.SplitN(token, []byte("."), 3)
		if len(parts) != 3 {
			t.Fatalf("accepted %q, which has not three parts", token)
		}
		sig, err := base64.RawURLEncoding.DecodeString(string(parts[2]))
		mac := hmac.New(sha256.New, secret)
		mac.Write(token[:len(parts[0])+1+len(parts[1])])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted %q without its MAC", token)
		}
		// Accepted once, it is accepted again: Verify keeps no state.
		if again, err := s.Verify(token, time.Unix(now, 0)); err != nil || again != user {
			t.Fatalf("accepted %q as %d, then %d, %v", token, user, again, err)
		}
	})
}
