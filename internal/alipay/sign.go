package alipay

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// CanonicalString is the string Alipay signs: the parameters sorted by key,
// the keys in skip and those with an empty value left out, joined as k=v with
// &. Values are the decoded, unescaped ones; only the first value of a key
// counts. It is exported for error messages and debugging; Sign and Verify
// apply the right skip list themselves.
func CanonicalString(params url.Values, skip ...string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if params.Get(k) == "" || contains(skip, k) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params.Get(k))
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Sign signs a merchant request the way Alipay's gateway checks it: the
// canonical string of params without sign (sign_type is included), RSA2. It
// returns the base64 signature to send as sign; params is not modified.
func Sign(params url.Values, key *rsa.PrivateKey) (string, error) {
	return SignContent([]byte(CanonicalString(params, "sign")), key)
}

// Verify checks a notify or a synchronous return from Alipay: the signature in
// sign over the canonical string without sign and sign_type. It fails with
// ErrBadSignature (wrapped) when sign is missing or does not match.
func Verify(params url.Values, pub *rsa.PublicKey) error {
	return verifyParams(params, pub, "sign", "sign_type")
}

// SignNotify is Alipay's side of [Verify]: it signs the canonical string of
// params without sign and sign_type. The sandbox uses it for the notifies and
// returns it sends.
func SignNotify(params url.Values, key *rsa.PrivateKey) (string, error) {
	return SignContent([]byte(CanonicalString(params, "sign", "sign_type")), key)
}

// VerifyRequest is the gateway's side of [Sign]: it checks a merchant request
// over the canonical string without sign only.
func VerifyRequest(params url.Values, pub *rsa.PublicKey) error {
	return verifyParams(params, pub, "sign")
}

func verifyParams(params url.Values, pub *rsa.PublicKey, skip ...string) error {
	sig := params.Get("sign")
	if sig == "" {
		return fmt.Errorf("%w: no sign parameter", ErrBadSignature)
	}
	return VerifyContent([]byte(CanonicalString(params, skip...)), sig, pub)
}

// SignContent signs content with SHA256withRSA (PKCS#1 v1.5), the scheme
// Alipay calls RSA2, and returns the standard base64 of the signature.
func SignContent(content []byte, key *rsa.PrivateKey) (string, error) {
	if key == nil {
		return "", errors.New("sign: nil private key")
	}
	sum := sha256.Sum256(content)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// VerifyContent checks a base64 RSA2 signature over content. Any failure,
// including undecodable base64, is ErrBadSignature (wrapped).
func VerifyContent(content []byte, sig string, pub *rsa.PublicKey) error {
	if pub == nil {
		return errors.New("verify: nil public key")
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: sign is not base64", ErrBadSignature)
	}
	sum := sha256.Sum256(content)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw); err != nil {
		return ErrBadSignature
	}
	return nil
}
