package alipay_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashgate/flashgate/internal/alipay"
)

func TestLoadPrivateKey(t *testing.T) {
	k := testKeys(t)
	dir := t.TempDir()
	b64File := filepath.Join(dir, "app_private_key.txt")
	if err := os.WriteFile(b64File, []byte(testdata(t, "merchant_pkcs8.b64")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pkcs1 := testdata(t, "merchant_pkcs1.pem")
	b64 := testdata(t, "merchant_pkcs8.b64")
	cases := map[string]string{
		"PKCS#8 PEM text":              testdata(t, "merchant_pkcs8.pem"),
		"PKCS#1 PEM text":              pkcs1,
		"PEM text with spaces around":  "\n  " + pkcs1 + "\n\n",
		"PKCS#8 file path":             filepath.Join("testdata", "merchant_pkcs8.pem"),
		"PKCS#1 file path":             filepath.Join("testdata", "merchant_pkcs1.pem"),
		"bare base64":                  b64,
		"bare base64 with line breaks": wrap(b64, 64),
		"file of bare base64":          b64File,
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			key, err := alipay.LoadPrivateKey(s)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Equal(k.merchant) {
				t.Fatal("loaded a different key")
			}
		})
	}
}

func TestLoadPublicKey(t *testing.T) {
	k := testKeys(t)
	cases := map[string]string{
		"PKIX PEM text":   testdata(t, "merchant_public_pkix.pem"),
		"PKCS#1 PEM text": testdata(t, "merchant_public_pkcs1.pem"),
		"PKIX file path":  filepath.Join("testdata", "merchant_public_pkix.pem"),
		"PKCS#1 path":     filepath.Join("testdata", "merchant_public_pkcs1.pem"),
		"bare base64":     testdata(t, "merchant_public_pkix.b64"),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			key, err := alipay.LoadPublicKey(s)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Equal(k.merchantPub) {
				t.Fatal("loaded a different key")
			}
		})
	}
}

func TestLoadKeyErrors(t *testing.T) {
	edKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	edDER, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	edPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}))
	b64 := testdata(t, "merchant_pkcs8.b64")
	garbledB64 := b64[:100] + "!" + b64[101:]

	private := map[string]struct{ in, want string }{
		"empty":               {"", "empty key"},
		"garbage":             {"not a key at all", "not a readable file"},
		"missing file":        {filepath.Join(t.TempDir(), "nope.pem"), "not a readable file"},
		"truncated base64":    {b64[:201], "decode base64 key"},
		"base64 of junk":      {base64.StdEncoding.EncodeToString([]byte(strings.Repeat("junk", 40))), "neither a PKCS#1 nor a PKCS#8"},
		"broken PEM":          {"-----BEGIN PRIVATE KEY-----\nMIIE\n", "malformed PEM"},
		"public key as priv":  {testdata(t, "merchant_public_pkix.pem"), "neither a PKCS#1 nor a PKCS#8"},
		"ed25519 key":         {edPEM, "not RSA"},
		"garbled base64 text": {garbledB64, "not a readable file"},
	}
	for name, c := range private {
		t.Run("private/"+name, func(t *testing.T) {
			_, err := alipay.LoadPrivateKey(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
			if len(c.in) > 40 && strings.Contains(err.Error(), c.in[:40]) {
				t.Fatalf("error quotes the key material: %v", err)
			}
		})
	}
	public := map[string]struct{ in, want string }{
		"garbage":           {"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", "neither a PKIX"},
		"private as public": {testdata(t, "merchant_pkcs1.pem"), "neither a PKIX"},
		"missing file":      {"/nonexistent/alipay_public.pem", "not a readable file"},
	}
	for name, c := range public {
		t.Run("public/"+name, func(t *testing.T) {
			_, err := alipay.LoadPublicKey(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
		})
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}
