package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadPrivateKey reads an RSA private key given as PEM text, as the bare
// base64 body Alipay's key tool and console hand out, or as the path of a file
// holding either. PKCS#1 ("RSA PRIVATE KEY") and PKCS#8 ("PRIVATE KEY") are
// accepted. Errors never quote s, which may be key material.
func LoadPrivateKey(s string) (*rsa.PrivateKey, error) {
	der, err := keyDER(s, "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	key, err := parsePrivateDER(der)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	return key, nil
}

// LoadPublicKey reads an RSA public key given as PEM text, as the bare base64
// body Alipay's console shows ("支付宝公钥"), or as the path of a file holding
// either. PKIX ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") and an X.509
// certificate carrying an RSA key are accepted.
func LoadPublicKey(s string) (*rsa.PublicKey, error) {
	der, err := keyDER(s, "PUBLIC KEY")
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	key, err := parsePublicDER(der)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	return key, nil
}

// keyDER turns s (PEM, bare base64 or a path to either) into DER bytes. kind
// only words the errors.
func keyDER(s, kind string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty key")
	}
	if der, ok, err := inlineDER(s); ok {
		return der, err
	}
	b, err := os.ReadFile(s)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("not PEM or base64 and not a readable file: %w", pe.Err)
		}
		return nil, fmt.Errorf("read key file: %w", err)
	}
	content := strings.TrimSpace(string(b))
	if der, ok, err := inlineDER(content); ok {
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", s, err)
		}
		return der, nil
	}
	if len(b) > 0 && b[0] == 0x30 { // ASN.1 SEQUENCE: a raw DER file
		return b, nil
	}
	return nil, fmt.Errorf("key file %s holds no PEM or base64 %s", s, kind)
}

// inlineDER decodes s when it is PEM text or bare base64. ok reports whether
// s was one of the two; err whether it was nonetheless broken.
func inlineDER(s string) (der []byte, ok bool, err error) {
	if strings.Contains(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, true, errors.New("malformed PEM block")
		}
		return block.Bytes, true, nil
	}
	if !looksLikeBase64(s) {
		return nil, false, nil
	}
	der, err = base64.StdEncoding.DecodeString(stripSpace(s))
	if err != nil {
		return nil, true, fmt.Errorf("decode base64 key: %w", err)
	}
	return der, true, nil
}

// looksLikeBase64 reports whether s is long enough and made only of base64
// characters (and line breaks) to be a key body rather than a file name; the
// shortest RSA public key worth using is far longer than 64 characters.
func looksLikeBase64(s string) bool {
	n := 0
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9',
			r == '+', r == '/', r == '=':
			n++
		case r == '\n', r == '\r', r == ' ', r == '\t':
		default:
			return false
		}
	}
	return n >= 64
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', ' ', '\t':
			return -1
		}
		return r
	}, s)
}

func parsePrivateDER(der []byte) (*rsa.PrivateKey, error) {
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("neither a PKCS#1 nor a PKCS#8 private key")
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("PKCS#8 key is %T, not RSA", k)
	}
	return key, nil
}

func parsePublicDER(der []byte) (*rsa.PublicKey, error) {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		key, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PKIX key is %T, not RSA", k)
		}
		return key, nil
	}
	if key, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return key, nil
	}
	if cert, err := x509.ParseCertificate(der); err == nil {
		key, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("certificate key is %T, not RSA", cert.PublicKey)
		}
		return key, nil
	}
	return nil, errors.New("neither a PKIX nor a PKCS#1 public key nor a certificate")
}
