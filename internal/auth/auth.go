// Package auth mints and verifies shopper tokens: compact JWTs signed with
// HS256 whose "sub" claim is the user id (contract §3).
//
// Verification runs on the gateway's hot path for every buy, so it is written
// by hand instead of through a general JWT library: it accepts exactly one
// header shape (alg HS256), decodes into stack buffers and allocates nothing.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strconv"
	"sync"
	"time"
)

// Errors returned by Verify. All of them mean 401 unauthorized to a shopper;
// they are distinct so that tests and logs can tell them apart.
var (
	ErrMalformed  = errors.New("malformed token")
	ErrAlgorithm  = errors.New("token not signed with HS256")
	ErrSignature  = errors.New("bad token signature")
	ErrExpired    = errors.New("token expired")
	ErrBadSubject = errors.New("token subject is not a positive user id")
	ErrNotYet     = errors.New("token not valid yet (nbf)")
	ErrLifetime   = errors.New("token lifetime exceeds the maximum")
	ErrCritical   = errors.New("token header has a crit member")
)

// DefaultMaxLifetime is the longest a token may be valid for unless
// SetMaxLifetime says otherwise: a leaked token must not work for years.
const DefaultMaxLifetime = 24 * time.Hour

// nbfLeeway is how early a token may be used before its nbf, for the
// clocks of the minting and verifying hosts.
const nbfLeeway = 30

// MinSecretLen is the shortest secret accepted outside dev mode.
const MinSecretLen = 32

// maxTokenLen bounds the work done on hostile input.
const maxTokenLen = 1024

// macState is a pooled HMAC with room for its sum, so that verifying needs
// no allocation.
type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// Signer mints and verifies tokens with one HS256 secret. It is safe for
// concurrent use.
type Signer struct {
	secret      []byte
	macs        sync.Pool
	maxLifetime int64 // seconds; 0: no maximum
}

// NewSigner returns a Signer for secret that refuses tokens valid for
// longer than DefaultMaxLifetime.
func NewSigner(secret []byte) *Signer {
	s := &Signer{secret: append([]byte(nil), secret...), maxLifetime: int64(DefaultMaxLifetime / time.Second)}
	s.macs.New = func() any { return &macState{mac: hmac.New(sha256.New, s.secret)} }
	return s
}

// SetMaxLifetime sets the longest a token may be valid for: Verify refuses
// one whose exp is further than d from now. 0 turns the check off. Call it
// before the Signer is used.
func (s *Signer) SetMaxLifetime(d time.Duration) { s.maxLifetime = int64(d / time.Second) }

var b64 = base64.RawURLEncoding

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// Mint returns a token for userID that expires at exp.
func (s *Signer) Mint(userID int64, exp time.Time) string {
	claims, _ := json.Marshal(struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
		Iat int64  `json:"iat"`
	}{strconv.FormatInt(userID, 10), exp.Unix(), time.Now().Unix()})
	signing := b64.EncodeToString([]byte(hs256Header)) + "." + b64.EncodeToString(claims)
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(mac.Sum(nil))
}

// Verify checks token and returns its user id. now is the verification time.
func (s *Signer) Verify(token []byte, now time.Time) (int64, error) {
	c, err := s.claims(token)
	if err != nil {
		return 0, err
	}
	return s.check(c, now)
}

// claims checks everything of token that does not depend on the time (its
// shape, header and signature) and returns its claims.
func (s *Signer) claims(token []byte) (claims, error) {
	if len(token) == 0 || len(token) > maxTokenLen {
		return claims{}, ErrMalformed
	}
	dot1 := indexByte(token, '.')
	if dot1 < 0 {
		return claims{}, ErrMalformed
	}
	dot2 := indexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return claims{}, ErrMalformed
	}
	dot2 += dot1 + 1
	header, payload, sig := token[:dot1], token[dot1+1:dot2], token[dot2+1:]

	var buf [maxTokenLen]byte
	n, err := b64.Decode(buf[:], header)
	if err != nil {
		return claims{}, ErrMalformed
	}
	if err := checkHeader(buf[:n]); err != nil {
		return claims{}, err
	}

	var got [sha256.Size]byte
	if b64.DecodedLen(len(sig)) != sha256.Size {
		return claims{}, ErrSignature
	}
	if _, err := b64.Decode(got[:], sig); err != nil {
		return claims{}, ErrSignature
	}
	st := s.macs.Get().(*macState)
	st.mac.Reset()
	st.mac.Write(token[:dot2])
	want := st.mac.Sum(st.sum[:0])
	equal := hmac.Equal(want, got[:])
	s.macs.Put(st)
	if !equal {
		return claims{}, ErrSignature
	}

	n, err = b64.Decode(buf[:], payload)
	if err != nil {
		return claims{}, ErrMalformed
	}
	return parseClaims(buf[:n])
}

// check applies the time rules to a token's claims at now and returns its
// user id.
func (s *Signer) check(c claims, now time.Time) (int64, error) {
	t := now.Unix()
	if t >= c.exp {
		return 0, ErrExpired
	}
	if c.hasNbf && t+nbfLeeway < c.nbf {
		return 0, ErrNotYet
	}
	// The lifetime is judged from now, not from iat: load testers mint by
	// hand with any iat (contract §3), and what a leaked token is worth is
	// how long it still works.
	if max := s.maxLifetime; max > 0 && c.exp-t > max {
		return 0, ErrLifetime
	}
	return c.sub, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// checkHeader accepts a JSON object whose "alg" is "HS256" and whose "typ", if
// present, is "JWT". A "crit" member is refused: it lists extensions the
// verifier must understand (RFC 7515 §4.1.11), and we understand none; a key
// written with escapes is refused too, so that no "crit" hides behind one.
// Any other member is ignored, as RFC 7515 allows.
func checkHeader(h []byte) error {
	alg := false
	sc := scanner{p: h, all: true}
	for {
		key, val, isString, ok, err := sc.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if indexByte(key, '\\') >= 0 {
			return ErrMalformed
		}
		switch string(key) {
		case "crit":
			return ErrCritical
		case "alg":
			if !isString || val == nil || string(val) != "HS256" {
				return ErrAlgorithm
			}
			alg = true
		case "typ":
			if !isString || (string(val) != "JWT" && string(val) != "jwt") {
				return ErrMalformed
			}
		}
	}
	if !alg {
		return ErrAlgorithm
	}
	return nil
}

// claims are the members of a token's claims that Verify checks.
type claims struct {
	sub, exp, nbf int64
	hasNbf        bool
}

// parseClaims extracts sub (a decimal positive int64 string), exp (required)
// and nbf (optional; JSON numbers of seconds) from the claims object.
func parseClaims(p []byte) (c claims, err error) {
	haveExp := false
	sc := scanner{p: p}
	for {
		key, val, isString, ok, err := sc.next()
		if err != nil {
			return claims{}, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "sub":
			v, ok := parsePositive(val)
			if !isString || !ok {
				return claims{}, ErrBadSubject
			}
			c.sub = v
		case "exp", "nbf":
			if key[0] == 'n' && !isString && string(val) == "null" {
				continue // an optional claim written as null is absent
			}
			v, ok := parseNumericDate(val)
			if isString || !ok {
				return claims{}, ErrMalformed
			}
			if key[0] == 'e' {
				c.exp, haveExp = v, true
			} else {
				c.nbf, c.hasNbf = v, true
			}
		}
	}
	if c.sub == 0 {
		return claims{}, ErrBadSubject
	}
	if !haveExp {
		return claims{}, ErrMalformed
	}
	return c, nil
}

func parsePositive(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 || b[0] == '0' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v == 0 || v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// parseNumericDate accepts an integer, or a number with a fractional part
// (truncated), as RFC 7519 allows.
func parseNumericDate(b []byte) (int64, bool) {
	if i := indexByte(b, '.'); i >= 0 {
		for _, c := range b[i+1:] {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		b = b[:i]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// scanner walks a flat JSON object member by member without allocating:
// strings come without their quotes (nil when they hold a backslash, which
// no member we read may), other scalars as written; nested arrays and
// objects, and members with escaped keys, are skipped whole unless all is
// set (then a nested value comes as written, and a key with its escapes).
type scanner struct {
	p       []byte
	i       int
	started bool
	done    bool
	all     bool
}

// next returns the next member; ok is false after the last one.
func (sc *scanner) next() (key, val []byte, isString, ok bool, err error) {
	p := sc.p
	for {
		if sc.done {
			return nil, nil, false, false, nil
		}
		i := skipSpace(p, sc.i)
		if !sc.started {
			sc.started = true
			if i >= len(p) || p[i] != '{' {
				return nil, nil, false, false, ErrMalformed
			}
			i = skipSpace(p, i+1)
			if i < len(p) && p[i] == '}' {
				sc.done = true
				return nil, nil, false, false, trailing(p, i+1)
			}
		}
		key, next, escaped, good := readString(p, i)
		if !good {
			return nil, nil, false, false, ErrMalformed
		}
		i = skipSpace(p, next)
		if i >= len(p) || p[i] != ':' {
			return nil, nil, false, false, ErrMalformed
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return nil, nil, false, false, ErrMalformed
		}
		skip := escaped && !sc.all
		switch c := p[i]; {
		case c == '"':
			var valEscaped bool
			val, next, valEscaped, good = readString(p, i)
			if !good {
				return nil, nil, false, false, ErrMalformed
			}
			if valEscaped {
				val = nil
			}
			isString = true
		case c == '{' || c == '[':
			if next, good = skipNested(p, i); !good {
				return nil, nil, false, false, ErrMalformed
			}
			val, isString, skip = p[i:next], false, !sc.all
		default:
			start := i
			for i < len(p) && p[i] != ',' && p[i] != '}' && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r' {
				if p[i] == ']' || p[i] == '"' {
					return nil, nil, false, false, ErrMalformed
				}
				i++
			}
			if i == start {
				return nil, nil, false, false, ErrMalformed
			}
			val, next, isString = p[start:i], i, false
		}
		i = skipSpace(p, next)
		if i >= len(p) {
			return nil, nil, false, false, ErrMalformed
		}
		switch p[i] {
		case ',':
			sc.i = i + 1
		case '}':
			sc.done = true
			if err := trailing(p, i+1); err != nil {
				return nil, nil, false, false, err
			}
		default:
			return nil, nil, false, false, ErrMalformed
		}
		if !skip {
			return key, val, isString, true, nil
		}
	}
}

// skipNested returns the index after the array or object starting at i.
func skipNested(p []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(p); i++ {
		switch p[i] {
		case '"':
			_, next, _, ok := readString(p, i)
			if !ok {
				return 0, false
			}
			i = next - 1
		case '{', '[':
			depth++
			if depth > 32 {
				return 0, false
			}
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

func trailing(p []byte, i int) error {
	if skipSpace(p, i) != len(p) {
		return ErrMalformed
	}
	return nil
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// readString reads the string starting at p[i] == '"'. escaped reports a
// backslash inside; val then holds the raw, undecoded text.
func readString(p []byte, i int) (val []byte, next int, escaped, ok bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false, false
	}
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return p[i+1 : j], j + 1, escaped, true
		}
	}
	return nil, 0, false, false
}
