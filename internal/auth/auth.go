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
)

// MinSecretLen is the shortest secret accepted outside dev mode.
const MinSecretLen = 32

// maxTokenLen bounds the work done on hostile input.
const maxTokenLen = 1024

// Signer mints and verifies tokens with one HS256 secret. It is safe for
// concurrent use.
type Signer struct {
	secret []byte
	macs   sync.Pool
}

// NewSigner returns a Signer for secret.
func NewSigner(secret []byte) *Signer {
	s := &Signer{secret: append([]byte(nil), secret...)}
	s.macs.New = func() any { return hmac.New(sha256.New, s.secret) }
	return s
}

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
	if len(token) == 0 || len(token) > maxTokenLen {
		return 0, ErrMalformed
	}
	dot1 := indexByte(token, '.')
	if dot1 < 0 {
		return 0, ErrMalformed
	}
	dot2 := indexByte(token[dot1+1:], '.')
	if dot2 < 0 {
		return 0, ErrMalformed
	}
	dot2 += dot1 + 1
	header, payload, sig := token[:dot1], token[dot1+1:dot2], token[dot2+1:]

	var buf [maxTokenLen]byte
	n, err := b64.Decode(buf[:], header)
	if err != nil {
		return 0, ErrMalformed
	}
	if err := checkHeader(buf[:n]); err != nil {
		return 0, err
	}

	var want, got [sha256.Size]byte
	if b64.DecodedLen(len(sig)) != sha256.Size {
		return 0, ErrSignature
	}
	if _, err := b64.Decode(got[:], sig); err != nil {
		return 0, ErrSignature
	}
	mac := s.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(token[:dot2])
	mac.Sum(want[:0])
	s.macs.Put(mac)
	if !hmac.Equal(want[:], got[:]) {
		return 0, ErrSignature
	}

	n, err = b64.Decode(buf[:], payload)
	if err != nil {
		return 0, ErrMalformed
	}
	sub, exp, err := parseClaims(buf[:n])
	if err != nil {
		return 0, err
	}
	if now.Unix() >= exp {
		return 0, ErrExpired
	}
	return sub, nil
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
// present, is "JWT". Any other member is ignored, as RFC 7515 allows.
func checkHeader(h []byte) error {
	alg := false
	err := scanObject(h, func(key, val []byte, isString bool) error {
		switch string(key) {
		case "alg":
			if !isString || string(val) != "HS256" {
				return ErrAlgorithm
			}
			alg = true
		case "typ":
			if !isString || (string(val) != "JWT" && string(val) != "jwt") {
				return ErrMalformed
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !alg {
		return ErrAlgorithm
	}
	return nil
}

// parseClaims extracts sub (a decimal positive int64 string) and exp (a JSON
// number of seconds) from the claims object.
func parseClaims(p []byte) (sub, exp int64, err error) {
	haveExp := false
	err = scanObject(p, func(key, val []byte, isString bool) error {
		switch string(key) {
		case "sub":
			if !isString {
				return ErrBadSubject
			}
			v, ok := parsePositive(val)
			if !ok {
				return ErrBadSubject
			}
			sub = v
		case "exp":
			if isString {
				return ErrMalformed
			}
			v, ok := parseNumericDate(val)
			if !ok {
				return ErrMalformed
			}
			exp, haveExp = v, true
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if sub == 0 {
		return 0, 0, ErrBadSubject
	}
	if !haveExp {
		return 0, 0, ErrMalformed
	}
	return sub, exp, nil
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

// scanObject walks a flat JSON object, calling fn for every member whose value
// is a string (without escapes), number, boolean or null. Nested values and
// escaped strings are rejected as malformed: no token we mint or accept uses
// them, and refusing them keeps the parser small and allocation-free.
func scanObject(p []byte, fn func(key, val []byte, isString bool) error) error {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return ErrMalformed
	}
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return trailing(p, i+1)
	}
	for {
		key, next, ok := readString(p, i)
		if !ok {
			return ErrMalformed
		}
		i = skipSpace(p, next)
		if i >= len(p) || p[i] != ':' {
			return ErrMalformed
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return ErrMalformed
		}
		var val []byte
		isString := p[i] == '"'
		if isString {
			val, next, ok = readString(p, i)
			if !ok {
				return ErrMalformed
			}
		} else {
			start := i
			for i < len(p) && p[i] != ',' && p[i] != '}' && p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r' {
				if p[i] == '{' || p[i] == '[' || p[i] == '"' {
					return ErrMalformed
				}
				i++
			}
			val, next = p[start:i], i
			if len(val) == 0 {
				return ErrMalformed
			}
		}
		if err := fn(key, val, isString); err != nil {
			return err
		}
		i = skipSpace(p, next)
		if i >= len(p) {
			return ErrMalformed
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return trailing(p, i+1)
		default:
			return ErrMalformed
		}
	}
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

func readString(p []byte, i int) (val []byte, next int, ok bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(p); j++ {
		switch p[j] {
		case '\\':
			return nil, 0, false
		case '"':
			return p[i+1 : j], j + 1, true
		}
	}
	return nil, 0, false
}
