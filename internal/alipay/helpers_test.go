package alipay_test

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"testing"

	"github.com/flashgate/flashgate/internal/alipay"
)

const testAppID = "2021000000000001"

// keys are the fixed key pairs under testdata: the merchant's and the one
// playing Alipay.
type keys struct {
	merchant    *rsa.PrivateKey
	merchantPub *rsa.PublicKey
	alipay      *rsa.PrivateKey
	alipayPub   *rsa.PublicKey
}

func testKeys(t testing.TB) keys {
	t.Helper()
	var k keys
	var err error
	if k.merchant, err = alipay.LoadPrivateKey(testdata(t, "merchant_pkcs8.pem")); err != nil {
		t.Fatal(err)
	}
	if k.merchantPub, err = alipay.LoadPublicKey(testdata(t, "merchant_public_pkix.pem")); err != nil {
		t.Fatal(err)
	}
	if k.alipay, err = alipay.LoadPrivateKey(testdata(t, "alipay_private.pem")); err != nil {
		t.Fatal(err)
	}
	if k.alipayPub, err = alipay.LoadPublicKey(testdata(t, "alipay_public.pem")); err != nil {
		t.Fatal(err)
	}
	return k
}

// testdata returns the text of a file under testdata.
func testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testClient(t testing.TB, gateway string) *alipay.Client {
	t.Helper()
	k := testKeys(t)
	return alipay.New(alipay.Config{
		Gateway:         gateway,
		AppID:           testAppID,
		PrivateKey:      k.merchant,
		AlipayPublicKey: k.alipayPub,
	}, nil)
}
