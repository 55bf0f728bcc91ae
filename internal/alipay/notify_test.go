package alipay_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/flashgate/flashgate/internal/alipay"
)

// signed returns p signed by the test key playing Alipay.
func signed(t testing.TB, p url.Values) url.Values {
	t.Helper()
	p = clone(p)
	p.Del("sign")
	sig, err := alipay.SignNotify(p, testKeys(t).alipay)
	if err != nil {
		t.Fatal(err)
	}
	p.Set("sign", sig)
	return p
}

func TestParseNotify(t *testing.T) {
	c := testClient(t, "")
	n, err := c.ParseNotify(notifyParams())
	if err != nil {
		t.Fatal(err)
	}
	if n.OutTradeNo != "o-1" || n.TradeNo != "2026010222001400000001" || n.TradeStatus != alipay.TradeSuccess ||
		n.TotalAmount != "19.90" || n.AppID != testAppID || n.NotifyID != "n-1" || n.GmtPayment != "2026-01-02 03:05:00" || !n.Paid() {
		t.Fatalf("notify = %+v", n)
	}
	back, err := url.ParseQuery(n.Raw)
	if err != nil || back.Get("sign") != notifySignature {
		t.Fatalf("Raw does not hold the form: %v", err)
	}
	if !alipay.AmountEqual(n.TotalAmount, "19.9") {
		t.Fatal("amount")
	}
}

func TestParseNotifyRefuses(t *testing.T) {
	c := testClient(t, "")
	withApp := notifyParams()
	withApp.Set("app_id", "2021000000000002")
	missing := notifyParams()
	missing.Del("out_trade_no")
	repeated := notifyParams()
	repeated.Add("trade_status", "TRADE_SUCCESS")
	rsa1 := notifyParams()
	rsa1.Set("sign_type", "RSA")
	gbk := notifyParams()
	gbk.Set("charset", "GBK")
	tampered := notifyParams()
	tampered.Set("total_amount", "0.01")

	cases := map[string]struct {
		form url.Values
		want error
	}{
		"tampered amount":         {tampered, alipay.ErrBadSignature},
		"no sign":                 {func() url.Values { p := notifyParams(); p.Del("sign"); return p }(), alipay.ErrBadSignature},
		"empty form":              {url.Values{}, alipay.ErrBadSignature},
		"another app, signed":     {signed(t, withApp), alipay.ErrWrongApp},
		"missing field, signed":   {signed(t, missing), alipay.ErrMalformed},
		"repeated field":          {repeated, alipay.ErrMalformed},
		"sign_type RSA":           {rsa1, alipay.ErrMalformed},
		"charset GBK, signed":     {signed(t, gbk), alipay.ErrMalformed},
		"another app, not signed": {withApp, alipay.ErrBadSignature},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.ParseNotify(tc.form)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseReturn(t *testing.T) {
	c := testClient(t, "")
	q := signed(t, url.Values{
		"method":       {alipay.MethodPagePayReturn},
		"app_id":       {testAppID},
		"auth_app_id":  {testAppID},
		"charset":      {"utf-8"},
		"version":      {"1.0"},
		"sign_type":    {"RSA2"},
		"seller_id":    {"2088102000000002"},
		"timestamp":    {"2026-01-02 03:05:02"},
		"out_trade_no": {"o-1"},
		"trade_no":     {"t-1"},
		"total_amount": {"19.90"},
	})
	r, err := c.ParseReturn(q)
	if err != nil {
		t.Fatal(err)
	}
	if r.OutTradeNo != "o-1" || r.TradeNo != "t-1" || r.TotalAmount != "19.90" || r.SellerID != "2088102000000002" {
		t.Fatalf("return = %+v", r)
	}
	q.Set("trade_no", "t-2")
	if _, err := c.ParseReturn(q); !errors.Is(err, alipay.ErrBadSignature) {
		t.Fatalf("tampered return: %v", err)
	}
}
