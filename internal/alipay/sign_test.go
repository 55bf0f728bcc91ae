package alipay_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"testing"

	"github.com/flashgate/flashgate/internal/alipay"
)

// pagePayParams are fixed request parameters, with an empty return_url and a
// stale sign that the canonical string must both leave out.
func pagePayParams() url.Values {
	return url.Values{
		"app_id":      {testAppID},
		"method":      {"alipay.trade.page.pay"},
		"format":      {"JSON"},
		"charset":     {"utf-8"},
		"sign_type":   {"RSA2"},
		"timestamp":   {"2026-01-02 03:04:05"},
		"version":     {"1.0"},
		"notify_url":  {"https://shop.example/pay/alipay/notify"},
		"return_url":  {""},
		"biz_content": {`{"out_trade_no":"o-1","total_amount":"19.90","subject":"秒杀 & 特价","product_code":"FAST_INSTANT_TRADE_PAY"}`},
		"sign":        {"stale"},
	}
}

// The canonical string, written out by hand: sorted keys, no sign, no empty
// return_url, raw (unescaped) values, sign_type included for a request.
const pagePayCanonical = `app_id=2021000000000001` +
	`&biz_content={"out_trade_no":"o-1","total_amount":"19.90","subject":"秒杀 & 特价","product_code":"FAST_INSTANT_TRADE_PAY"}` +
	`&charset=utf-8&format=JSON&method=alipay.trade.page.pay` +
	`&notify_url=https://shop.example/pay/alipay/notify` +
	`&sign_type=RSA2&timestamp=2026-01-02 03:04:05&version=1.0`

// pagePaySignature was computed outside Go:
//
//	printf '%s' "$canonical" | openssl dgst -sha256 -sign testdata/merchant_pkcs8.pem | base64 -w0
const pagePaySignature = "m61pYmX8IaC+98k+xOgqozF/6eUXnCcCnheFQR/2gQnwGcwK++Y3jlblb9ve1amjOjnSP0KwChh935EHMLcgQupfOZAyZt9ALOTn+tulAkH535BI8JqJNFFlfEwO7BwX2BFDqeGsH38ZQHprclfKx+3a6DJI6CbYLvE1oAnXKr937FsZm9VE7h1a+gtjtiv9sJdwbfqx9rcE0DU+MZ/G8AO69Fb/cciHdtDGL7tc/z8ZbQLqipexPG3XoyergY4GDOT3dqUhjQxhKSVOm/xwrs4uJxMOU2+LehU+kozrJDk2fw7Fxzz0QStFuq6/dzHgvtQrz+AHEY2skC+OvSJbXA=="

func TestSignKnownVector(t *testing.T) {
	k := testKeys(t)
	got, err := alipay.Sign(pagePayParams(), k.merchant)
	if err != nil {
		t.Fatal(err)
	}
	if got != pagePaySignature {
		t.Fatalf("Sign = %s\nwant  %s", got, pagePaySignature)
	}
	// The vector itself is over the hand-written string.
	raw, _ := base64.StdEncoding.DecodeString(got)
	sum := sha256.Sum256([]byte(pagePayCanonical))
	if err := rsa.VerifyPKCS1v15(k.merchantPub, crypto.SHA256, sum[:], raw); err != nil {
		t.Fatalf("signature does not cover the hand-written canonical string: %v", err)
	}
	p := pagePayParams()
	p.Set("sign", got)
	if err := alipay.VerifyRequest(p, k.merchantPub); err != nil {
		t.Fatalf("VerifyRequest: %v", err)
	}
}

// notifyParams is a fixed notify; notifySignature was computed with openssl
// and testdata/alipay_private.pem over the canonical string without sign and
// sign_type:
//
//	app_id=2021000000000001&buyer_id=2088102000000001&gmt_payment=2026-01-02 03:05:00
//	&notify_id=n-1&notify_time=2026-01-02 03:05:01&notify_type=trade_status_sync
//	&out_trade_no=o-1&total_amount=19.90&trade_no=2026010222001400000001&trade_status=TRADE_SUCCESS
func notifyParams() url.Values {
	return url.Values{
		"app_id":       {testAppID},
		"buyer_id":     {"2088102000000001"},
		"gmt_payment":  {"2026-01-02 03:05:00"},
		"notify_id":    {"n-1"},
		"notify_time":  {"2026-01-02 03:05:01"},
		"notify_type":  {"trade_status_sync"},
		"out_trade_no": {"o-1"},
		"total_amount": {"19.90"},
		"trade_no":     {"2026010222001400000001"},
		"trade_status": {"TRADE_SUCCESS"},
		"sign_type":    {"RSA2"},
		"sign":         {notifySignature},
	}
}

const notifySignature = "OFe0yu2FOPCmoK4JKBmqzfVVj7Aq83lBpyU3rNzM2XsUPlnZ81fYKGpbX/zC3uTNGsuhMKSzmsJEnwQ2KCxsH0rEBI3P/UPmynlmJMSA+WrDRSF4t+VqOAQtb0kSDsfr1q0qZamC5dzFiW/cXs/9gyhseXT2lhtoQLBhg93qyqk3bTKbIACnb4Q6U4qidwmBQbhqHNrt+X9iRFOiJ6tBlOPMtNzBm3oxu/7AwrRGwmfpfspDCNouBVmrjC+rBciJ1sVJZH6Qc0uDxdaiNtaOzbGC5rZvBKXGvtArmIxmrvStBMyim4ii1uPB3/i1De4ObZ7cjCmm0jAhgk/iy+d7gQ=="

func TestVerifyKnownNotify(t *testing.T) {
	k := testKeys(t)
	p := notifyParams()
	if err := alipay.Verify(p, k.alipayPub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got, err := alipay.SignNotify(p, k.alipay)
	if err != nil {
		t.Fatal(err)
	}
	if got != notifySignature {
		t.Fatalf("SignNotify = %s, want the openssl vector", got)
	}
	// sign_type is outside the signed content of a notify.
	p.Set("sign_type", "RSA")
	if err := alipay.Verify(p, k.alipayPub); err != nil {
		t.Fatalf("Verify with another sign_type: %v", err)
	}
	// ... but inside that of a request.
	if err := alipay.VerifyRequest(notifyParams(), k.alipayPub); !errors.Is(err, alipay.ErrBadSignature) {
		t.Fatalf("VerifyRequest of a notify = %v, want ErrBadSignature", err)
	}
}

// Changing any one signed parameter, dropping it, or adding a non-empty one
// must break the signature.
func TestVerifyDetectsEveryChange(t *testing.T) {
	k := testKeys(t)
	base := notifyParams()
	if err := alipay.Verify(base, k.alipayPub); err != nil {
		t.Fatal(err)
	}
	mustFail := func(what string, p url.Values) {
		t.Helper()
		if err := alipay.Verify(p, k.alipayPub); !errors.Is(err, alipay.ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", what, err)
		}
	}
	for key := range base {
		if key == "sign_type" {
			continue // not signed, by the rule
		}
		for _, v := range []string{base.Get(key) + "0", "x" + base.Get(key), base.Get(key)[1:], " " + base.Get(key)} {
			p := clone(base)
			p.Set(key, v)
			mustFail("change "+key+" to "+v, p)
		}
		if key != "sign" {
			p := clone(base)
			p.Del(key)
			mustFail("drop "+key, p)
		}
	}
	for _, key := range []string{"a", "zz", "passback_params", "sign_typ", "total_amount "} {
		p := clone(base)
		p.Set(key, "1")
		mustFail("add "+key, p)
	}
	// An added empty parameter is outside the canonical string, by the rule.
	p := clone(base)
	p.Set("body", "")
	if err := alipay.Verify(p, k.alipayPub); err != nil {
		t.Errorf("empty extra parameter: %v", err)
	}
	// A signature by another key fails.
	p = clone(base)
	sig, err := alipay.SignNotify(p, k.merchant)
	if err != nil {
		t.Fatal(err)
	}
	p.Set("sign", sig)
	mustFail("signed by the wrong key", p)
	p.Del("sign")
	mustFail("unsigned", p)
}

// Values travel URL-encoded but are signed raw: a round trip through Encode
// and ParseQuery keeps the signature valid.
func TestSignSurvivesFormEncoding(t *testing.T) {
	k := testKeys(t)
	p := url.Values{
		"subject":   {"a+b=c&d 秒杀 100%"},
		"app_id":    {testAppID},
		"sign_type": {"RSA2"},
	}
	sig, err := alipay.Sign(p, k.merchant)
	if err != nil {
		t.Fatal(err)
	}
	p.Set("sign", sig)
	back, err := url.ParseQuery(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := alipay.VerifyRequest(back, k.merchantPub); err != nil {
		t.Fatal(err)
	}
}

func clone(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}
