package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/testenv"
)

// TestRefundConfirmedButNotRecorded: Alipay confirms a refund, and MySQL is
// cut at that very moment, so the refund is not recorded and the shopper
// gets 503. A background job asks Alipay and records it: the order turns
// refunded and its unit goes back, without the shopper asking again.
func TestRefundConfirmedButNotRecorded(t *testing.T) {
	const appID = "2021000000000042"
	keys := "../internal/alipay/testdata/"
	merchant, err := alipay.LoadPrivateKey(keys + "merchant_pkcs8.pem")
	if err != nil {
		t.Fatal(err)
	}
	alipayKey, err := alipay.LoadPrivateKey(keys + "alipay_private.pem")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := paysim.New(paysim.Config{AppID: appID, MerchantPublicKey: &merchant.PublicKey, AlipayPrivateKey: alipayKey})
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.MySQLProxy(t)
	// In front of the sandbox: once armed, MySQL is cut right after Alipay
	// has refunded, before flashgate can record it.
	var armed atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		isRefund := r.URL.Query().Get("method") == alipay.MethodRefund || form.Get("method") == alipay.MethodRefund
		sim.Handler().ServeHTTP(w, r)
		if isRefund && armed.Load() {
			proxy.Cut()
		}
	}))
	t.Cleanup(func() { front.Close(); sim.Close() })

	s := start(t, func(c *config.Config) {
		c.MySQLDSN = proxy.DSN(t, c.MySQLDSN)
		c.AlipayGateway = front.URL + paysim.GatewayPath
		c.AlipayAppID = appID
		c.AlipayPrivateKey = keys + "merchant_pkcs8.pem"
		c.AlipayPublicKey = keys + "alipay_public.pem"
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 1, "shards": 1, "price": "19.90"})
	const user = 7
	id := s.buyOrder(item, user)
	s.waitStatus(id, user, "unpaid", 20*time.Second)
	s.openCashier(s.payURL(id, user))
	resp, err := s.http.Post(front.URL+"/sim/pay?out_trade_no="+url.QueryEscape(id), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var paid struct {
		TradeStatus string `json:"trade_status"`
	}
	json.NewDecoder(resp.Body).Decode(&paid)
	resp.Body.Close()
	if paid.TradeStatus != alipay.TradeSuccess {
		t.Fatalf("sandbox pay: %d %+v", resp.StatusCode, paid)
	}
	s.waitStatus(id, user, "paid", 10*time.Second)

	armed.Store(true)
	if a := s.refund(id, user); a.Status == 200 {
		t.Fatalf("refund with MySQL cut after Alipay's answer: %d %s", a.Status, a.Raw)
	}
	armed.Store(false)
	if tr, ok := sim.Trade(id); !ok || tr.Status != alipay.TradeClosed {
		t.Fatalf("alipay's trade after the refund: %+v %v", tr, ok)
	}
	proxy.Restore()
	s.waitStatus(id, user, "refunded", 30*time.Second)
	if st := s.settled(item); st.Refunded != 1 || st.Remaining != 1 {
		t.Fatalf("stats after the repair: %+v", st)
	}
}
