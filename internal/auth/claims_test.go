package auth_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

const header = `{"alg":"HS256","typ":"JWT"}`

func claims(kv ...any) string {
	s := `{"sub":"7"`
	for i := 0; i < len(kv); i += 2 {
		s += `,"` + kv[i].(string) + `":` + strconv.FormatInt(kv[i+1].(int64), 10)
	}
	return s + "}"
}

// TestVerifyTimeClaims: nbf is honoured (with a small leeway for clocks),
// and a token valid for longer than the maximum lifetime from now (24h
// unless set) is refused, whatever its iat (load testers mint by hand with
// any iat, contract §3).
func TestVerifyTimeClaims(t *testing.T) {
	s := auth.NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	n := now.Unix()
	hour := int64(3600)
	cases := []struct {
		name   string
		claims string
		ok     bool
	}{
		{"plain", claims("exp", n+hour), true},
		{"nbf passed", claims("exp", n+hour, "nbf", n-10), true},
		{"nbf within leeway", claims("exp", n+hour, "nbf", n+5), true},
		{"nbf ahead", claims("exp", n+hour, "nbf", n+hour/2), false},
		{"24h from now", claims("exp", n+24*hour), true},
		{"25h from now", claims("exp", n+25*hour), false},
		{"iat long ago, exp within 24h", claims("exp", n+hour, "iat", int64(1)), true},
		{"exp 10 years ahead", claims("exp", n+10*365*24*hour), false},
		{"exp 10 years ahead, iat now", claims("exp", n+10*365*24*hour, "iat", n), false},
	}
	for _, c := range cases {
		_, err := s.Verify([]byte(sign(header, c.claims, secret)), now)
		if (err == nil) != c.ok {
			t.Errorf("%s: %s: err %v, want ok %v", c.name, c.claims, err, c.ok)
		}
	}
	s.SetMaxLifetime(30 * 24 * time.Hour)
	if _, err := s.Verify([]byte(sign(header, claims("exp", n+20*24*hour, "iat", n), secret)), now); err != nil {
		t.Errorf("20 days under a 30-day maximum: %v", err)
	}
}

// TestVerifyRejectsCrit: a "crit" header names extensions the verifier must
// understand (RFC 7515 §4.1.11); we understand none, so any is refused,
// however it is written.
func TestVerifyRejectsCrit(t *testing.T) {
	s := auth.NewSigner(secret)
	now := time.Unix(1_800_000_000, 0)
	body := claims("exp", now.Unix()+3600)
	for _, h := range []string{
		`{"alg":"HS256","crit":["exp"],"exp":1}`,
		`{"alg":"HS256","crit":[]}`,
		`{"crit":"x","alg":"HS256"}`,
		`{"alg":"HS256","cr\u0069t":["b64"],"b64":false}`,
	} {
		if _, err := s.Verify([]byte(sign(h, body, secret)), now); err == nil {
			t.Errorf("header %s accepted", h)
		}
	}
}
