package paysim_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/paysim"
)

const appID = "2021000000000001"

// env is a Sim behind an httptest server and a merchant client pointed at it.
type env struct {
	sim      *paysim.Sim
	srv      *httptest.Server
	client   *alipay.Client
	merchant *rsa.PrivateKey
}

func loadPrivate(t *testing.T, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := alipay.LoadPrivateKey(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newEnv starts a Sim with the fixed test keys; edit adjusts its Config.
func newEnv(t *testing.T, edit func(*paysim.Config)) *env {
	t.Helper()
	merchant := loadPrivate(t, "merchant_pkcs8.pem")
	cfg := paysim.Config{
		AppID:             appID,
		MerchantPublicKey: &merchant.PublicKey,
		AlipayPrivateKey:  loadPrivate(t, "alipay_private.pem"),
		NotifyBackoff:     []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond},
	}
	if edit != nil {
		edit(&cfg)
	}
	sim, err := paysim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	return &env{sim: sim, srv: srv, merchant: merchant, client: clientFor(srv, merchant, sim.AlipayPublicKey(), appID)}
}

func clientFor(srv *httptest.Server, key *rsa.PrivateKey, alipayPub *rsa.PublicKey, app string) *alipay.Client {
	return alipay.New(alipay.Config{
		Gateway:         srv.URL + paysim.GatewayPath,
		AppID:           app,
		PrivateKey:      key,
		AlipayPublicKey: alipayPub,
	}, srv.Client())
}

// notifySink is the merchant's notify endpoint: it answers from script in
// turn (the last answer repeats) and hands every form to forms.
type notifySink struct {
	*httptest.Server
	forms chan url.Values
	hits  atomic.Int32
}

func newSink(t *testing.T, script ...string) *notifySink {
	t.Helper()
	s := &notifySink{forms: make(chan url.Values, 32)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			t.Errorf("notify: %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		n := int(s.hits.Add(1))
		s.forms <- r.PostForm
		_, _ = io.WriteString(w, script[min(n, len(script))-1])
	}))
	t.Cleanup(s.Close)
	return s
}

// next waits for the next notify.
func (s *notifySink) next(t *testing.T) url.Values {
	t.Helper()
	select {
	case f := <-s.forms:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no notify arrived")
		return nil
	}
}

// open gets a page-pay URL and opens it like a browser, which creates the
// trade; it returns the page.
func (e *env) open(t *testing.T, p alipay.PagePay) string {
	t.Helper()
	u, err := e.client.PagePayURL(p)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page pay: %d\n%s", resp.StatusCode, body)
	}
	return string(body)
}

// button posts to /sim/pay or /sim/cancel without following redirects.
func (e *env) button(t *testing.T, path string, form url.Values) *http.Response {
	t.Helper()
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func order(no, notifyURL string) alipay.PagePay {
	return alipay.PagePay{
		OutTradeNo:  no,
		TotalAmount: "19.90",
		Subject:     "秒杀 <iPhone> & 特价",
		NotifyURL:   notifyURL,
		ReturnURL:   "https://shop.example/pay/alipay/return",
	}
}

func TestPaymentRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	sink := newSink(t, "failure", "success")

	page := e.open(t, order("o-1", sink.URL))
	for _, want := range []string{"19.90", "o-1", "秒杀 &lt;iPhone&gt; &amp; 特价", `action="/sim/pay"`, `action="/sim/cancel"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q:\n%s", want, page)
		}
	}
	q, err := e.client.Query(ctx, "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if q.TradeStatus != alipay.TradeWaitBuyerPay || q.TotalAmount != "19.90" || q.TradeNo == "" {
		t.Fatalf("query before paying: %+v", q)
	}

	// Pay the way a curl tour does.
	resp := e.button(t, "/sim/pay?out_trade_no=o-1", nil)
	var paid struct {
		OutTradeNo  string `json:"out_trade_no"`
		TradeNo     string `json:"trade_no"`
		TradeStatus string `json:"trade_status"`
		ReturnURL   string `json:"return_url"`
	}
	decodeJSON(t, resp, &paid)
	if resp.StatusCode != http.StatusOK || paid.TradeStatus != alipay.TradeSuccess || paid.TradeNo != q.TradeNo {
		t.Fatalf("/sim/pay: %d %+v", resp.StatusCode, paid)
	}

	// The first notify is refused with "failure", so it comes again.
	first, second := sink.next(t), sink.next(t)
	for _, form := range []url.Values{first, second} {
		n, err := e.client.ParseNotify(form)
		if err != nil {
			t.Fatalf("notify does not verify: %v\n%v", err, form)
		}
		if n.OutTradeNo != "o-1" || n.TradeNo != q.TradeNo || !n.Paid() || !alipay.AmountEqual(n.TotalAmount, "19.9") ||
			n.GmtPayment == "" || n.BuyerID == "" || n.Subject != "秒杀 <iPhone> & 特价" || n.NotifyType != "trade_status_sync" {
			t.Fatalf("notify = %+v", n)
		}
		for _, k := range []string{"notify_time", "notify_id", "app_id", "charset", "version", "sign_type", "receipt_amount", "sign"} {
			if form.Get(k) == "" {
				t.Errorf("notify lacks %s", k)
			}
		}
	}
	if first.Get("notify_id") != second.Get("notify_id") {
		t.Fatal("a retry must keep its notify_id")
	}
	if h := sink.hits.Load(); h != 2 {
		t.Fatalf("notify hits = %d, want 2 (failure, then success)", h)
	}

	// The signed return the browser is sent to.
	ret, err := url.Parse(paid.ReturnURL)
	if err != nil || !strings.HasPrefix(paid.ReturnURL, "https://shop.example/pay/alipay/return?") {
		t.Fatalf("return_url %q: %v", paid.ReturnURL, err)
	}
	r, err := e.client.ParseReturn(ret.Query())
	if err != nil {
		t.Fatal(err)
	}
	if r.OutTradeNo != "o-1" || r.TradeNo != q.TradeNo || r.TotalAmount != "19.90" || ret.Query().Get("method") != alipay.MethodPagePayReturn {
		t.Fatalf("return = %+v", r)
	}

	// Paying twice changes nothing and sends nothing.
	if err := e.sim.Pay(ctx, "o-1"); err != nil {
		t.Fatal(err)
	}
	q, err = e.client.Query(ctx, "o-1")
	if err != nil || q.TradeStatus != alipay.TradeSuccess || q.SendPayDate == "" || q.BuyerUserID == "" {
		t.Fatalf("query after paying: %+v, %v", q, err)
	}

	// Refund: money moves once per out_request_no.
	rf, err := e.client.Refund(ctx, "o-1", "19.90", "o-1-r")
	if err != nil || !rf.FundChange || rf.RefundFee != "19.90" || rf.TradeNo != q.TradeNo {
		t.Fatalf("refund: %+v, %v", rf, err)
	}
	rf, err = e.client.Refund(ctx, "o-1", "19.90", "o-1-r")
	if err != nil || rf.FundChange || rf.RefundFee != "19.90" {
		t.Fatalf("repeated refund: %+v, %v", rf, err)
	}
	refundNotify := sink.next(t)
	n, err := e.client.ParseNotify(refundNotify)
	if err != nil || n.TradeStatus != alipay.TradeClosed || n.RefundFee != "19.90" || n.OutBizNo != "o-1-r" || n.GmtRefund == "" {
		t.Fatalf("refund notify: %+v, %v", n, err)
	}
	if q, err := e.client.Query(ctx, "o-1"); err != nil || q.TradeStatus != alipay.TradeClosed {
		t.Fatalf("query after refund: %+v, %v", q, err)
	}
	if _, err := e.client.Refund(ctx, "o-1", "0.01", "o-1-r2"); !alipay.HasSubCode(err, alipay.SubTradeStatusError) {
		t.Fatalf("refund of a fully refunded trade: %v", err)
	}
	if got, _ := e.sim.Trade("o-1"); got.RefundFee != "19.90" || got.Status != alipay.TradeClosed {
		t.Fatalf("Trade = %+v", got)
	}
	select {
	case f := <-sink.forms:
		t.Fatalf("unexpected notify: %v", f)
	default:
	}
}

func TestBrowserButtons(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	sink := newSink(t, "success")

	e.open(t, order("o-pay", sink.URL))
	resp := e.button(t, "/sim/pay", url.Values{"out_trade_no": {"o-pay"}, "redirect": {"1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Pay button: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	r, err := e.client.ParseReturn(loc.Query())
	if err != nil || r.TradeNo == "" || r.TotalAmount != "19.90" {
		t.Fatalf("return after Pay: %+v, %v", r, err)
	}
	// The first notify attempt is over before the browser is sent back.
	if sink.hits.Load() != 1 {
		t.Fatalf("notify hits when the browser returns = %d", sink.hits.Load())
	}

	e.open(t, order("o-cancel", sink.URL))
	resp = e.button(t, "/sim/cancel", url.Values{"out_trade_no": {"o-cancel"}, "redirect": {"1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Cancel button: %d", resp.StatusCode)
	}
	loc, _ = url.Parse(resp.Header.Get("Location"))
	r, err = e.client.ParseReturn(loc.Query())
	if err != nil || r.OutTradeNo != "o-cancel" || r.TradeNo != "" || r.TotalAmount != "" {
		t.Fatalf("return after Cancel: %+v, %v", r, err)
	}
	if q, err := e.client.Query(ctx, "o-cancel"); err != nil || q.TradeStatus != alipay.TradeClosed {
		t.Fatalf("query after Cancel: %+v, %v", q, err)
	}
	if err := e.sim.Pay(ctx, "o-cancel"); !errors.Is(err, paysim.ErrTradeClosed) {
		t.Fatalf("Pay after Cancel: %v", err)
	}
	if resp := e.button(t, "/sim/pay", url.Values{"out_trade_no": {"o-cancel"}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("/sim/pay of a closed trade: %d", resp.StatusCode)
	}
	if resp := e.button(t, "/sim/pay", url.Values{"out_trade_no": {"nope"}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/sim/pay of an unknown trade: %d", resp.StatusCode)
	}
	if err := e.sim.Cancel("o-pay"); !errors.Is(err, paysim.ErrTradePaid) {
		t.Fatalf("Cancel of a paid trade: %v", err)
	}
	// Reopening a paid trade's page shows it, without a Pay button.
	if page := e.open(t, order("o-pay", sink.URL)); strings.Contains(page, `action="/sim/pay"`) || !strings.Contains(page, alipay.TradeSuccess) {
		t.Fatalf("page of a paid trade:\n%s", page)
	}
	index, err := e.srv.Client().Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer index.Body.Close()
	body, _ := io.ReadAll(index.Body)
	if !strings.Contains(string(body), "o-cancel") || !strings.Contains(string(body), "o-pay") {
		t.Fatalf("index:\n%s", body)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	if err := e.client.Close(ctx, "never-opened"); !alipay.HasSubCode(err, alipay.SubTradeNotExist) {
		t.Fatalf("close of an unknown trade: %v", err)
	}
	if _, err := e.client.Query(ctx, "never-opened"); !alipay.HasSubCode(err, alipay.SubTradeNotExist) {
		t.Fatalf("query of an unknown trade: %v", err)
	}
	if err := e.sim.Pay(ctx, "never-opened"); !errors.Is(err, paysim.ErrTradeNotExist) {
		t.Fatalf("Pay of an unknown trade: %v", err)
	}

	e.open(t, order("o-wait", ""))
	if err := e.client.Close(ctx, "o-wait"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Close(ctx, "o-wait"); err != nil {
		t.Fatalf("closing again: %v", err)
	}
	if q, err := e.client.Query(ctx, "o-wait"); err != nil || q.TradeStatus != alipay.TradeClosed {
		t.Fatalf("query after close: %+v, %v", q, err)
	}

	e.open(t, order("o-paid", "")) // no notify_url: paying sends nothing
	if err := e.sim.Pay(ctx, "o-paid"); err != nil {
		t.Fatal(err)
	}
	err := e.client.Close(ctx, "o-paid")
	var apiErr *alipay.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != alipay.CodeBusinessFail || apiErr.SubCode != alipay.SubTradeStatusError {
		t.Fatalf("close of a paid trade: %v", err)
	}
}

func TestRefundRules(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.open(t, order("o-r", ""))
	if _, err := e.client.Refund(ctx, "o-r", "19.90", "a"); !alipay.HasSubCode(err, alipay.SubTradeStatusError) {
		t.Fatalf("refund of an unpaid trade: %v", err)
	}
	if _, err := e.client.Refund(ctx, "nope", "1", "a"); !alipay.HasSubCode(err, alipay.SubTradeNotExist) {
		t.Fatalf("refund of an unknown trade: %v", err)
	}
	if err := e.sim.Pay(ctx, "o-r"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Refund(ctx, "o-r", "19.91", "a"); !alipay.HasSubCode(err, alipay.SubRefundAmountError) {
		t.Fatalf("refund above the total: %v", err)
	}
	r, err := e.client.Refund(ctx, "o-r", "9.90", "a")
	if err != nil || !r.FundChange || r.RefundFee != "9.90" {
		t.Fatalf("partial refund: %+v, %v", r, err)
	}
	if _, err := e.client.Refund(ctx, "o-r", "1.00", "a"); !alipay.HasSubCode(err, alipay.SubDiscordantRepeat) {
		t.Fatalf("same out_request_no, other amount: %v", err)
	}
	if q, _ := e.client.Query(ctx, "o-r"); q.TradeStatus != alipay.TradeSuccess {
		t.Fatalf("status after a partial refund: %s", q.TradeStatus)
	}
	r, err = e.client.Refund(ctx, "o-r", "10", "b")
	if err != nil || !r.FundChange || r.RefundFee != "19.90" {
		t.Fatalf("second partial refund: %+v, %v", r, err)
	}
	if q, _ := e.client.Query(ctx, "o-r"); q.TradeStatus != alipay.TradeClosed {
		t.Fatalf("status after refunding all: %s", q.TradeStatus)
	}
}

func TestTamperedRequestsRejected(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)

	// A page-pay URL whose amount was edited after signing.
	u, err := e.client.PagePayURL(order("o-t", ""))
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(u, url.QueryEscape(`"19.90"`), url.QueryEscape(`"0.01"`), 1)
	if tampered == u {
		t.Fatal("test did not tamper")
	}
	resp, err := e.srv.Client().Get(tampered)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), alipay.SubInvalidSignature) {
		t.Fatalf("tampered page pay: %d\n%s", resp.StatusCode, body)
	}
	if _, ok := e.sim.Trade("o-t"); ok {
		t.Fatal("a tampered page pay created a trade")
	}

	// API calls signed with another key (here Alipay's own), or for another
	// app.
	stranger := loadPrivate(t, "alipay_private.pem")
	var apiErr *alipay.APIError
	_, err = clientFor(e.srv, stranger, e.sim.AlipayPublicKey(), appID).Query(ctx, "o-t")
	if !errors.As(err, &apiErr) || apiErr.Code != alipay.CodeInvalidArgs || apiErr.SubCode != alipay.SubInvalidSignature {
		t.Fatalf("query signed by a stranger: %v", err)
	}
	_, err = clientFor(e.srv, e.merchant, e.sim.AlipayPublicKey(), "2021000000000999").Query(ctx, "o-t")
	if !alipay.HasSubCode(err, alipay.SubInvalidAppID) {
		t.Fatalf("query for another app: %v", err)
	}

	// The answers are signed: a merchant holding the wrong Alipay key
	// refuses them.
	e.open(t, order("o-t", ""))
	_, err = clientFor(e.srv, e.merchant, &e.merchant.PublicKey, appID).Query(ctx, "o-t")
	if !errors.Is(err, alipay.ErrBadSignature) {
		t.Fatalf("answer checked with the wrong key: %v", err)
	}

	// A raw form with a bad sign, straight to the gateway.
	form := url.Values{"app_id": {appID}, "method": {alipay.MethodQuery}, "sign_type": {"RSA2"}, "charset": {"utf-8"},
		"timestamp": {"2026-01-02 03:04:05"}, "biz_content": {`{"out_trade_no":"o-t"}`}, "sign": {"AAAA"}}
	resp, err = e.srv.Client().PostForm(e.srv.URL+paysim.GatewayPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var top map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&top); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(top["alipay_trade_query_response"]), `"isv.invalid-signature"`) {
		t.Fatalf("answer: %v", top)
	}
}

func TestPagePayInconsistentReopen(t *testing.T) {
	e := newEnv(t, nil)
	e.open(t, order("o-x", ""))
	p := order("o-x", "")
	p.TotalAmount = "0.01"
	u, err := e.client.PagePayURL(p)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "ACQ.CONTEXT_INCONSISTENT") {
		t.Fatalf("reopen with another amount: %d\n%s", resp.StatusCode, body)
	}
	if got, _ := e.sim.Trade("o-x"); got.TotalAmount != "19.90" {
		t.Fatalf("trade = %+v", got)
	}
}

func TestTradeTimesOut(t *testing.T) {
	var offset atomic.Int64
	e := newEnv(t, nil)
	paysim.SetClock(e.sim, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	p := order("o-late", "")
	p.Timeout = time.Minute
	e.open(t, p)
	offset.Store(int64(2 * time.Minute))
	if err := e.sim.Pay(context.Background(), "o-late"); !errors.Is(err, paysim.ErrTradeClosed) {
		t.Fatalf("Pay after the timeout: %v", err)
	}
	if q, err := e.client.Query(context.Background(), "o-late"); err != nil || q.TradeStatus != alipay.TradeClosed {
		t.Fatalf("query after the timeout: %+v, %v", q, err)
	}
}

func TestNotifyGivesUp(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) {
		c.NotifyBackoff = []time.Duration{time.Millisecond, time.Millisecond}
	})
	sink := newSink(t, "failure")
	e.open(t, order("o-n", sink.URL))
	if err := e.sim.Pay(context.Background(), "o-n"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		sink.next(t)
	}
	e.sim.Close() // waits for the delivery goroutine
	if h := sink.hits.Load(); h != 3 {
		t.Fatalf("attempts = %d, want 1 + len(NotifyBackoff)", h)
	}
}

func TestCloseStopsRetries(t *testing.T) {
	e := newEnv(t, func(c *paysim.Config) { c.NotifyBackoff = []time.Duration{time.Hour} })
	sink := newSink(t, "failure")
	e.open(t, order("o-c", sink.URL))
	if err := e.sim.Pay(context.Background(), "o-c"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.sim.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits out the backoff")
	}
	if h := sink.hits.Load(); h != 1 {
		t.Fatalf("attempts = %d", h)
	}
}

func TestRun(t *testing.T) {
	merchant := loadPrivate(t, "merchant_pkcs8.pem")
	sim, err := paysim.New(paysim.Config{AppID: appID, MerchantPublicKey: &merchant.PublicKey, AlipayPrivateKey: loadPrivate(t, "alipay_private.pem")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = sim.Run(ctx, ln) })
	c := alipay.New(alipay.Config{
		Gateway:         "http://" + ln.Addr().String() + paysim.GatewayPath,
		AppID:           appID,
		PrivateKey:      merchant,
		AlipayPublicKey: sim.AlipayPublicKey(),
	}, &http.Client{Timeout: 5 * time.Second})
	if _, err := c.Query(ctx, "x"); !alipay.HasSubCode(err, alipay.SubTradeNotExist) {
		t.Fatalf("query through Run: %v", err)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run = %v", runErr)
	}
}

func TestNewGeneratesAlipayKey(t *testing.T) {
	merchant, err := paysim.GenerateMerchantKey()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := paysim.New(paysim.Config{AppID: appID, MerchantPublicKey: &merchant.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if pub := sim.AlipayPublicKey(); pub == nil || pub.N.BitLen() != 2048 || pub.Equal(&merchant.PublicKey) {
		t.Fatal("no fresh 2048-bit Alipay key")
	}
	if _, err := paysim.New(paysim.Config{AppID: appID}); err == nil {
		t.Fatal("New without a merchant key succeeded")
	}
}

func decodeJSON(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestWapPay: the sandbox serves alipay.trade.wap.pay as it serves page pay,
// with a phone cashier, the quit link and the wap return method.
func TestWapPay(t *testing.T) {
	e := newEnv(t, nil)
	p := order("o-w", "")
	p.ReturnURL = "https://shop.example/pay/alipay/return"
	p.QuitURL = "https://shop.example/items/7"
	u, err := e.client.WapPayURL(p)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "alipay.trade.wap.pay") || !strings.Contains(string(body), `href="https://shop.example/items/7"`) {
		t.Fatalf("wap cashier: %d\n%s", resp.StatusCode, body)
	}
	tr, ok := e.sim.Trade("o-w")
	if !ok || !tr.Wap || tr.QuitURL != p.QuitURL {
		t.Fatalf("trade: %+v %v", tr, ok)
	}
	r := e.button(t, "/sim/pay", url.Values{"out_trade_no": {"o-w"}})
	var paid struct {
		ReturnURL string `json:"return_url"`
	}
	json.NewDecoder(r.Body).Decode(&paid)
	r.Body.Close()
	ret, err := url.Parse(paid.ReturnURL)
	if err != nil || ret.Query().Get("method") != alipay.MethodWapPayReturn {
		t.Fatalf("wap return %q", paid.ReturnURL)
	}
	if _, err := e.client.ParseReturn(ret.Query()); err != nil {
		t.Fatalf("wap return does not verify: %v", err)
	}
}

// TestWapPayProductCode: a wap pay must say QUICK_WAP_WAY, a page pay
// FAST_INSTANT_TRADE_PAY, as Alipay checks.
func TestWapPayProductCode(t *testing.T) {
	e := newEnv(t, nil)
	u, err := e.client.PagePayURL(order("o-pc", ""))
	if err != nil {
		t.Fatal(err)
	}
	// Sign a wap pay request whose biz_content keeps the page product code.
	q, _ := url.ParseQuery(u[strings.Index(u, "?")+1:])
	q.Set("method", alipay.MethodWapPay)
	q.Del("sign")
	sig, err := alipay.Sign(q, e.merchant)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("sign", sig)
	resp, err := e.srv.Client().Get(e.srv.URL + paysim.GatewayPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "QUICK_WAP_WAY") {
		t.Fatalf("wap pay with the page product code: %d\n%s", resp.StatusCode, body)
	}
}
