package alipay_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/flashgate/flashgate/internal/alipay"
)

// The fuzzers feed arbitrary form bodies to the parsers. They must never panic,
// every failure must be one of the package's sentinels, and whatever parses
// must really be signed by the key playing Alipay and be for our app.

func FuzzParseNotify(f *testing.F) {
	f.Add(notifyParams().Encode())
	c := testClient(f, "")
	pub := testKeys(f).alipayPub
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		n, err := c.ParseNotify(form)
		if err != nil {
			assertSentinel(t, err)
			return
		}
		if n.AppID != testAppID || n.OutTradeNo == "" || n.TotalAmount == "" || alipay.Verify(form, pub) != nil {
			t.Fatalf("accepted a notify that should fail: %q", body)
		}
	})
}

func FuzzParseReturn(f *testing.F) {
	f.Add(notifyParams().Encode())
	c := testClient(f, "")
	pub := testKeys(f).alipayPub
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		r, err := c.ParseReturn(q)
		if err != nil {
			assertSentinel(t, err)
			return
		}
		if r.AppID != testAppID || r.OutTradeNo == "" || alipay.Verify(q, pub) != nil {
			t.Fatalf("accepted a return that should fail: %q", query)
		}
	})
}

func assertSentinel(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, alipay.ErrBadSignature) && !errors.Is(err, alipay.ErrWrongApp) && !errors.Is(err, alipay.ErrMalformed) {
		t.Fatalf("error outside the sentinels: %v", err)
	}
}
