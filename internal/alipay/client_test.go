package alipay_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
)

func TestPagePayURL(t *testing.T) {
	k := testKeys(t)
	c := testClient(t, "https://openapi.example/gateway.do")
	alipay.SetClock(c, func() time.Time { return time.Date(2026, 1, 1, 19, 4, 5, 0, time.UTC) })
	raw, err := c.PagePayURL(alipay.PagePay{
		OutTradeNo:  "o-1",
		TotalAmount: "19.90",
		Subject:     "秒杀 & 特价",
		NotifyURL:   "https://shop.example/pay/alipay/notify",
		ReturnURL:   "https://shop.example/pay/alipay/return",
		Timeout:     90 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://openapi.example/gateway.do" {
		t.Fatalf("URL base = %s", got)
	}
	q := u.Query()
	want := map[string]string{
		"app_id":     testAppID,
		"method":     "alipay.trade.page.pay",
		"format":     "JSON",
		"charset":    "utf-8",
		"sign_type":  "RSA2",
		"timestamp":  "2026-01-02 03:04:05", // 19:04:05 UTC is 03:04:05 next day in Beijing
		"version":    "1.0",
		"notify_url": "https://shop.example/pay/alipay/notify",
		"return_url": "https://shop.example/pay/alipay/return",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	var biz map[string]string
	if err := json.Unmarshal([]byte(q.Get("biz_content")), &biz); err != nil {
		t.Fatalf("biz_content: %v", err)
	}
	wantBiz := map[string]string{
		"out_trade_no": "o-1", "total_amount": "19.90", "subject": "秒杀 & 特价",
		"product_code": "FAST_INSTANT_TRADE_PAY", "timeout_express": "2m",
	}
	for k, v := range wantBiz {
		if biz[k] != v {
			t.Errorf("biz_content %s = %q, want %q", k, biz[k], v)
		}
	}
	if err := alipay.VerifyRequest(q, k.merchantPub); err != nil {
		t.Fatalf("the URL's signature: %v", err)
	}
}

func TestPagePayURLRefusesBadInput(t *testing.T) {
	c := testClient(t, "https://openapi.example/gateway.do")
	for _, p := range []alipay.PagePay{
		{OutTradeNo: "o", TotalAmount: "1.001", Subject: "s"},
		{OutTradeNo: "o", TotalAmount: "", Subject: "s"},
		{OutTradeNo: "", TotalAmount: "1", Subject: "s"},
		{OutTradeNo: "o", TotalAmount: "1", Subject: ""},
	} {
		if _, err := c.PagePayURL(p); err == nil {
			t.Errorf("PagePayURL(%+v) succeeded", p)
		}
	}
}

// fakeGateway answers every call with body, after checking the request is a
// signed form POST.
func fakeGateway(t *testing.T, body func(method string) string) *httptest.Server {
	t.Helper()
	k := testKeys(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s", r.Method)
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if err := alipay.VerifyRequest(r.PostForm, k.merchantPub); err != nil {
			t.Errorf("request signature: %v", err)
		}
		_, _ = io.WriteString(w, body(r.PostForm.Get("method")))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// signedBody writes an answer the way Alipay does: the node verbatim, then
// the signature over exactly those bytes.
func signedBody(t *testing.T, method, node string) string {
	t.Helper()
	sig, err := alipay.SignContent([]byte(node), testKeys(t).alipay)
	if err != nil {
		t.Fatal(err)
	}
	return `{"` + alipay.ResponseNode(method) + `":` + node + `,"sign":"` + sig + `"}`
}

func TestQuery(t *testing.T) {
	// Odd spacing and key order on purpose: the signature is over these
	// bytes, which re-encoding would change.
	node := `{"code":"10000","msg":"Success", "buyer_logon_id":"abc***@example.com","buyer_pay_amount":"0.00",` +
		`"out_trade_no":"o-1","trade_no":"2026010222001","trade_status":"TRADE_SUCCESS","total_amount":"19.90","send_pay_date":"2026-01-02 03:05:00"}`
	srv := fakeGateway(t, func(method string) string {
		if method != alipay.MethodQuery {
			t.Errorf("method %s", method)
		}
		return signedBody(t, method, node)
	})
	q, err := testClient(t, srv.URL).Query(context.Background(), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if q.TradeStatus != alipay.TradeSuccess || q.TradeNo != "2026010222001" || q.TotalAmount != "19.90" || q.SendPayDate == "" {
		t.Fatalf("query = %+v", q)
	}
}

func TestRefund(t *testing.T) {
	srv := fakeGateway(t, func(method string) string {
		return signedBody(t, method, `{"code":"10000","msg":"Success","fund_change":"Y","refund_fee":"19.90","out_trade_no":"o-1","trade_no":"t-1"}`)
	})
	r, err := testClient(t, srv.URL).Refund(context.Background(), "o-1", "19.90", "o-1-refund")
	if err != nil {
		t.Fatal(err)
	}
	if !r.FundChange || r.RefundFee != "19.90" || r.TradeNo != "t-1" {
		t.Fatalf("refund = %+v", r)
	}
}

func TestAPIErrors(t *testing.T) {
	ctx := context.Background()
	notExist := `{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}`
	cases := []struct {
		name  string
		body  func(t *testing.T, method string) string
		check func(t *testing.T, err error)
	}{
		{"signed business error", func(t *testing.T, m string) string { return signedBody(t, m, notExist) },
			func(t *testing.T, err error) {
				var e *alipay.APIError
				if !errors.As(err, &e) || e.Code != "40004" || e.SubCode != alipay.SubTradeNotExist || e.SubMsg != "交易不存在" {
					t.Fatalf("err = %v", err)
				}
				if !alipay.HasSubCode(err, alipay.SubTradeNotExist) {
					t.Fatal("HasSubCode = false")
				}
			}},
		{"unsigned gateway error", func(t *testing.T, m string) string {
			return `{"` + alipay.ResponseNode(m) + `":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}}`
		}, func(t *testing.T, err error) {
			if !alipay.HasSubCode(err, alipay.SubInvalidSignature) {
				t.Fatalf("err = %v", err)
			}
		}},
		{"error_response node", func(t *testing.T, m string) string {
			return `{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}`
		}, func(t *testing.T, err error) {
			if !alipay.HasSubCode(err, alipay.SubInvalidAppID) {
				t.Fatalf("err = %v", err)
			}
		}},
		{"unsigned success", func(t *testing.T, m string) string {
			return `{"` + alipay.ResponseNode(m) + `":{"code":"10000","msg":"Success"}}`
		}, wantIs(alipay.ErrBadSignature)},
		{"tampered node", func(t *testing.T, m string) string {
			return strings.Replace(signedBody(t, m, `{"code":"10000","msg":"Success","trade_status":"WAIT_BUYER_PAY"}`), "WAIT_BUYER_PAY", "TRADE_SUCCESS", 1)
		}, wantIs(alipay.ErrBadSignature)},
		{"tampered business error", func(t *testing.T, m string) string {
			return strings.Replace(signedBody(t, m, notExist), "40004", "40005", 1)
		}, wantIs(alipay.ErrBadSignature)},
		{"signed by someone else", func(t *testing.T, m string) string {
			sig, _ := alipay.SignContent([]byte(notExist), testKeys(t).merchant)
			return `{"` + alipay.ResponseNode(m) + `":` + notExist + `,"sign":"` + sig + `"}`
		}, wantIs(alipay.ErrBadSignature)},
		{"node of another method", func(t *testing.T, m string) string {
			return signedBody(t, alipay.MethodRefund, `{"code":"10000","msg":"Success"}`)
		}, wantIs(alipay.ErrMalformed)},
		{"not JSON", func(t *testing.T, m string) string { return "<html>502</html>" }, wantIs(alipay.ErrMalformed)},
		{"node not an object", func(t *testing.T, m string) string {
			return `{"` + alipay.ResponseNode(m) + `":"x","sign":"AAAA"}`
		}, wantIs(alipay.ErrMalformed)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeGateway(t, func(m string) string { return c.body(t, m) })
			err := testClient(t, srv.URL).Close(ctx, "o-1")
			if err == nil {
				t.Fatal("Close succeeded")
			}
			c.check(t, err)
		})
	}
}

// Alipay signs "/" but may send it as "\/"; the SDKs accept both.
func TestResponseWithEscapedSlash(t *testing.T) {
	plain := `{"code":"10000","msg":"Success","out_trade_no":"o/1","trade_no":"t-1"}`
	sig, err := alipay.SignContent([]byte(plain), testKeys(t).alipay)
	if err != nil {
		t.Fatal(err)
	}
	srv := fakeGateway(t, func(m string) string {
		return `{"` + alipay.ResponseNode(m) + `":` + strings.ReplaceAll(plain, "/", `\/`) + `,"sign":"` + sig + `"}`
	})
	q, err := testClient(t, srv.URL).Query(context.Background(), "o/1")
	if err != nil {
		t.Fatal(err)
	}
	if q.OutTradeNo != "o/1" {
		t.Fatalf("out_trade_no = %q", q.OutTradeNo)
	}
}

func TestHTTPFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := testClient(t, srv.URL).Query(context.Background(), "o-1")
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := testClient(t, srv.URL).Query(ctx, "o-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
}

func wantIs(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want %v", err, target)
		}
	}
}

func TestWapPayURL(t *testing.T) {
	k := testKeys(t)
	c := testClient(t, "https://openapi.example/gateway.do")
	raw, err := c.WapPayURL(alipay.PagePay{
		OutTradeNo: "o-2", TotalAmount: "9.90", Subject: "phone",
		ReturnURL: "https://shop.example/pay/alipay/return", QuitURL: "https://shop.example/items/7",
	})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	var biz map[string]string
	if err := json.Unmarshal([]byte(q.Get("biz_content")), &biz); err != nil {
		t.Fatal(err)
	}
	if q.Get("method") != alipay.MethodWapPay || biz["product_code"] != "QUICK_WAP_WAY" || biz["quit_url"] != "https://shop.example/items/7" ||
		biz["out_trade_no"] != "o-2" || biz["total_amount"] != "9.90" {
		t.Fatalf("wap pay URL: %v %v", q, biz)
	}
	if err := alipay.VerifyRequest(q, k.merchantPub); err != nil {
		t.Fatalf("the URL's signature: %v", err)
	}
	// Page pay has no quit_url, even when one is given.
	raw, err = c.PagePayURL(alipay.PagePay{OutTradeNo: "o-3", TotalAmount: "1.00", Subject: "x", QuitURL: "https://shop.example/"})
	if err != nil || strings.Contains(raw, "quit_url") {
		t.Fatalf("page pay with a quit_url: %v %s", err, raw)
	}
	if _, err := c.WapPayURL(alipay.PagePay{OutTradeNo: "o-4", TotalAmount: "abc", Subject: "x"}); err == nil || !strings.Contains(err.Error(), "wap pay") {
		t.Fatalf("bad amount: %v", err)
	}
}
