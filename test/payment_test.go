package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/app"
	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/testenv"
)

// buyOrder buys one unit for user and returns the order id.
func (s *stack) buyOrder(item int64, user int64) string {
	s.t.Helper()
	a := s.buy(item, s.token(user))
	if a.Status != 202 {
		s.t.Fatalf("buy for user %d: %d %s", user, a.Status, a.Raw)
	}
	return a.str("order_id")
}

// get200 gets u and wants a 200; it may run beside the test's goroutine.
func (s *stack) get200(u string) error {
	resp, err := s.http.Get(u)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return nil
}

// buyRetrying buys as a client does: a 503 is tried again (contract §4),
// and a duplicate after it is the unit the failed try took.
func (s *stack) buyRetrying(item int64, user int64) string {
	s.t.Helper()
	a := s.buy(item, s.token(user))
	for try := 1; a.Status == 503 && try < 20; try++ {
		time.Sleep(time.Duration(try*50) * time.Millisecond)
		if a = s.buy(item, s.token(user)); a.code() == "duplicate" {
			return a.str("order_id")
		}
	}
	if a.Status != 202 {
		s.t.Fatalf("buy for user %d: %d %s", user, a.Status, a.Raw)
	}
	return a.str("order_id")
}

// buyEventually buys until the gateway takes it: a unit given back reaches
// every gateway's cached state a moment after it is back in Redis.
func (s *stack) buyEventually(item int64, user int64) string {
	s.t.Helper()
	var id string
	testenv.Eventually(s.t, 5*time.Second, func() error {
		a := s.buy(item, s.token(user))
		if a.Status != 202 {
			return fmt.Errorf("buy for user %d: %d %s", user, a.Status, a.Raw)
		}
		id = a.str("order_id")
		return nil
	})
	return id
}

func (s *stack) orderStatus(id string, user int64) string {
	s.t.Helper()
	a := s.do("GET", s.gw+"/api/v1/orders/"+id, s.token(user), nil)
	if a.Status != 200 {
		s.t.Fatalf("get order %s: %d %s", id, a.Status, a.Raw)
	}
	return a.Body["order"].(map[string]any)["status"].(string)
}

func (s *stack) waitStatus(id string, user int64, want string, timeout time.Duration) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, func() error {
		if got := s.orderStatus(id, user); got != want {
			return fmt.Errorf("order %s is %s, want %s", id, got, want)
		}
		return nil
	})
}

func (s *stack) pay(id string, user int64, body any) answer {
	s.t.Helper()
	return s.do("POST", s.gw+"/api/v1/orders/"+id+"/pay", s.token(user), body)
}

func (s *stack) refund(id string, user int64) answer {
	s.t.Helper()
	return s.do("POST", s.gw+"/api/v1/orders/"+id+"/refund", s.token(user), nil)
}

// payURL asks for the Alipay page-pay URL of an order.
func (s *stack) payURL(id string, user int64) string {
	s.t.Helper()
	a := s.pay(id, user, map[string]string{"channel": "alipay"})
	if a.Status != 200 || a.code() != "ok" || a.str("pay_url") == "" {
		s.t.Fatalf("pay %s with alipay: %d %s", id, a.Status, a.Raw)
	}
	return a.str("pay_url")
}

// openCashier opens the pay URL as the buyer's browser does, which creates
// the trade in the sandbox.
func (s *stack) openCashier(u string) {
	s.t.Helper()
	resp, err := s.http.Get(u)
	if err != nil {
		s.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		s.t.Fatalf("cashier page: %d %s", resp.StatusCode, body)
	}
}

func (s *stack) points(user int64, delta int64) answer {
	s.t.Helper()
	return s.adminDo("POST", fmt.Sprintf("/admin/v1/points/%d", user), map[string]any{"delta": delta})
}

func (s *stack) balance(user int64) int64 {
	s.t.Helper()
	a := s.adminDo("GET", fmt.Sprintf("/admin/v1/points/%d", user), nil)
	if a.Status != 200 {
		s.t.Fatalf("balance of %d: %d %s", user, a.Status, a.Raw)
	}
	return int64(a.Body["balance"].(float64))
}

func orderOf(a answer) map[string]any {
	o, _ := a.Body["order"].(map[string]any)
	return o
}

// settled waits until nothing is reserved and invariant 1 holds: a cancel
// or refund is in flight until its unit is back in Redis.
func (s *stack) settled(item int64) stats {
	s.t.Helper()
	var st stats
	testenv.Eventually(s.t, 15*time.Second, func() error {
		st = s.stats(item)
		if live := st.Unpaid + st.Paid; st.Reserved != 0 || live+st.Reserved+st.Remaining != st.Stock {
			return fmt.Errorf("invariant 1 does not hold yet: %+v", st)
		}
		return nil
	})
	return st
}

// watcher is an open status WebSocket.
type watcher struct {
	t    testing.TB
	conn *websocket.Conn
	msgs chan map[string]string
	err  error // why msgs closed
}

func (s *stack) watch(id string, user int64) *watcher {
	s.t.Helper()
	u := "ws" + strings.TrimPrefix(s.gw, "http") + "/api/v1/orders/" + id + "/ws?token=" + s.token(user)
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		s.t.Fatalf("websocket of %s: %v (%v)", id, err, resp)
	}
	w := &watcher{t: s.t, conn: conn, msgs: make(chan map[string]string, 16)}
	go func() {
		defer close(w.msgs)
		for {
			var m map[string]string
			if err := conn.ReadJSON(&m); err != nil {
				w.err = err
				return
			}
			w.msgs <- m
		}
	}()
	s.t.Cleanup(func() { conn.Close() })
	return w
}

// expect reads messages until one says status want; the ones before it
// must be statuses of the same order.
func (w *watcher) expect(id, want string) {
	w.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-w.msgs:
			if !ok {
				w.t.Fatalf("websocket closed waiting for %s: %v", want, w.err)
			}
			if m["order_id"] != id {
				w.t.Fatalf("message for another order: %v", m)
			}
			if m["status"] == want {
				return
			}
		case <-timeout:
			w.t.Fatalf("no %s on the websocket in 10s", want)
		}
	}
}

// wsAnswer tries to open the WebSocket and returns the HTTP status of the
// refusal (or 101).
func (s *stack) wsAnswer(id, token string) int {
	s.t.Helper()
	u := "ws" + strings.TrimPrefix(s.gw, "http") + "/api/v1/orders/" + id + "/ws?token=" + url.QueryEscape(token)
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err == nil {
		conn.Close()
		return 101
	}
	if resp == nil {
		s.t.Fatalf("websocket dial: %v", err)
	}
	return resp.StatusCode
}

func (s *stack) paymentRows(id string) map[string]map[string]string {
	s.t.Helper()
	var rows []struct {
		Channel  string  `db:"channel"`
		Status   string  `db:"status"`
		TradeNo  *string `db:"trade_no"`
		Callback *string `db:"callback_content"`
		Time     *string `db:"callback_time"`
	}
	if err := s.app.DB.Select(&rows, "SELECT channel, status, trade_no, callback_content, CAST(callback_time AS CHAR) AS callback_time FROM payment_info WHERE order_id = ?", id); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]map[string]string{}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for _, r := range rows {
		out[r.Channel] = map[string]string{"status": r.Status, "trade_no": deref(r.TradeNo), "callback_content": deref(r.Callback), "callback_time": deref(r.Time)}
	}
	return out
}

func TestAlipayPayRefundAndPush(t *testing.T) { testAlipayPayRefundAndPush(t, start) }

func testAlipayPayRefundAndPush(t *testing.T, start starter) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 1, "shards": 1, "price": "19.90", "name": "phone"})
	const user = 7
	id := s.buyOrder(item, user)

	w := s.watch(id, user) // opened while the order may still be pending
	w.expect(id, "unpaid")

	// Refusals before the upgrade, and before paying.
	if got := s.wsAnswer(id, "not-a-token"); got != 401 {
		t.Errorf("websocket with a bad token: %d, want 401", got)
	}
	if got := s.wsAnswer(id, s.token(8)); got != 404 {
		t.Errorf("websocket of someone else's order: %d, want 404", got)
	}
	if got := s.wsAnswer("01KAZZZZZZZZZZZZZZZZZZZZZZ-1", s.token(user)); got != 404 {
		t.Errorf("websocket of an unknown order: %d, want 404", got)
	}
	if a := s.pay(id, user, map[string]string{"channel": "cash"}); a.Status != 422 || a.code() != "invalid" || !strings.Contains(a.str("message"), "channel") {
		t.Errorf("unknown channel: %d %s", a.Status, a.Raw)
	}
	if a := s.pay(id, user, nil); a.Status != 400 || a.code() != "invalid" {
		t.Errorf("no body: %d %s", a.Status, a.Raw)
	}
	if a := s.pay(id, 8, map[string]string{"channel": "alipay"}); a.Status != 404 {
		t.Errorf("paying someone else's order: %d %s", a.Status, a.Raw)
	}
	if a := s.do("POST", s.gw+"/api/v1/orders/"+id+"/pay", "", map[string]string{"channel": "alipay"}); a.Status != 401 {
		t.Errorf("paying without a token: %d %s", a.Status, a.Raw)
	}
	if a := s.refund(id, user); a.Status != 409 || a.code() != "conflict" {
		t.Errorf("refund of an unpaid order: %d %s", a.Status, a.Raw)
	}

	// The pay URL is the sandbox's page-pay, signed, for this order.
	payURL := s.payURL(id, user)
	u, err := url.Parse(payURL)
	if err != nil || u.Host != s.simAddr || u.Path != paysim.GatewayPath {
		t.Fatalf("pay_url %q", payURL)
	}
	q := u.Query()
	var biz map[string]string
	if err := json.Unmarshal([]byte(q.Get("biz_content")), &biz); err != nil {
		t.Fatalf("biz_content %q: %v", q.Get("biz_content"), err)
	}
	if q.Get("method") != alipay.MethodPagePay || q.Get("sign_type") != "RSA2" || q.Get("sign") == "" ||
		q.Get("notify_url") != s.gw+"/pay/alipay/notify" || q.Get("return_url") != s.gw+"/pay/alipay/return" ||
		biz["out_trade_no"] != id || biz["total_amount"] != "19.90" || biz["subject"] != "phone" {
		t.Fatalf("pay_url parameters: %v %v", q, biz)
	}
	if p := s.paymentRows(id)["alipay"]; p["status"] != "WAIT_BUYER_PAY" {
		t.Fatalf("payment_info after pay: %v", p)
	}

	// The buyer opens the cashier and pays; the sandbox notifies.
	s.openCashier(payURL)
	resp, err := s.http.Post("http://"+s.simAddr+"/sim/pay?out_trade_no="+url.QueryEscape(id), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var paid struct {
		TradeNo     string `json:"trade_no"`
		TradeStatus string `json:"trade_status"`
		ReturnURL   string `json:"return_url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&paid)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || paid.TradeStatus != alipay.TradeSuccess {
		t.Fatalf("sandbox pay: %d %+v %v", resp.StatusCode, paid, err)
	}
	w.expect(id, "paid")
	if got := s.orderStatus(id, user); got != "paid" {
		t.Fatalf("order after notify: %s", got)
	}
	p := s.paymentRows(id)["alipay"]
	if p["status"] != alipay.TradeSuccess || p["trade_no"] != paid.TradeNo || p["callback_time"] == "" ||
		!strings.Contains(p["callback_content"], "out_trade_no="+url.QueryEscape(id)) {
		t.Fatalf("payment_info after notify: %v", p)
	}

	// The synchronous return shows the status and is checked.
	page := s.do("GET", paid.ReturnURL, "", nil)
	if page.Status != 200 || !strings.Contains(page.Raw, id) || !strings.Contains(page.Raw, "paid") {
		t.Fatalf("return page: %d %s", page.Status, page.Raw)
	}
	tampered := strings.Replace(paid.ReturnURL, "total_amount=19.90", "total_amount=0.01", 1)
	if page := s.do("GET", tampered, "", nil); page.Status != 400 || strings.Contains(page.Raw, ">paid<") {
		t.Fatalf("tampered return page: %d %s", page.Status, page.Raw)
	}

	if a := s.pay(id, user, map[string]string{"channel": "alipay"}); a.Status != 409 || a.code() != "conflict" {
		t.Errorf("paying a paid order: %d %s", a.Status, a.Raw)
	}

	// Refund: through alipay.trade.refund, then the unit goes back.
	a := s.refund(id, user)
	if a.Status != 200 || orderOf(a)["status"] != "refunded" {
		t.Fatalf("refund: %d %s", a.Status, a.Raw)
	}
	w.expect(id, "refunded")
	if tr, _ := s.sim.Trade(id); tr.Status != alipay.TradeClosed || tr.RefundFee != "19.90" {
		t.Fatalf("sandbox trade after refund: %+v", tr)
	}
	if a := s.refund(id, user); a.Status != 409 {
		t.Errorf("second refund: %d %s", a.Status, a.Raw)
	}
	var n int
	if err := s.app.DB.Get(&n, "SELECT COUNT(*) FROM refund_log WHERE order_id = ? AND channel = 'alipay' AND out_request_no = ?", id, id+"-R"); err != nil || n != 1 {
		t.Fatalf("refund_log rows %d (%v)", n, err)
	}
	// The sandbox's refund notify (TRADE_CLOSED) is answered and recorded.
	testenv.Eventually(t, 5*time.Second, func() error {
		var n int
		if err := s.app.DB.Get(&n, "SELECT COUNT(*) FROM payment_notify WHERE order_id = ? AND trade_status = 'TRADE_CLOSED' AND outcome = 'recorded'", id); err != nil || n != 1 {
			return fmt.Errorf("refund notify not recorded: %d %v", n, err)
		}
		return nil
	})

	// The buyer may buy again: the sold-out item sells again.
	again := s.buyEventually(item, user)
	if again == id {
		t.Fatal("the same order id again")
	}
	st := s.settled(item)
	if st.Refunded != 1 || st.Orders != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPointsPayAndRefund(t *testing.T) { testPointsPayAndRefund(t, start) }

func testPointsPayAndRefund(t *testing.T, start starter) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 2, "shards": 1, "price": "9.90", "points": 500})
	const user = 21
	if a := s.points(user, 100); a.Status != 200 || a.code() != "ok" || a.Body["balance"] != float64(100) {
		t.Fatalf("grant: %d %s", a.Status, a.Raw)
	}
	id := s.buyOrder(item, user)
	points := map[string]string{"channel": "points"}
	if a := s.pay(id, user, points); a.Status != 409 || a.code() != "conflict" {
		t.Fatalf("paying 500 points with 100: %d %s", a.Status, a.Raw)
	}
	if got := s.orderStatus(id, user); got != "unpaid" {
		t.Fatalf("order after a refused points pay: %s", got)
	}
	if a := s.points(user, 400); a.Body["balance"] != float64(500) {
		t.Fatalf("grant: %d %s", a.Status, a.Raw)
	}
	a := s.pay(id, user, points)
	if a.Status != 200 || orderOf(a)["status"] != "paid" || orderOf(a)["order_id"] != id {
		t.Fatalf("points pay: %d %s", a.Status, a.Raw)
	}
	if b := s.balance(user); b != 0 {
		t.Fatalf("balance after paying: %d", b)
	}
	for _, ch := range []string{"points", "alipay"} {
		if a := s.pay(id, user, map[string]string{"channel": ch}); a.Status != 409 {
			t.Errorf("paying a paid order with %s: %d %s", ch, a.Status, a.Raw)
		}
	}
	if b := s.balance(user); b != 0 {
		t.Fatalf("balance after a second pay: %d", b)
	}
	if a := s.points(user, -1); a.Status != 409 || a.code() != "conflict" {
		t.Errorf("taking points below zero: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", "/admin/v1/points/21", map[string]any{}); a.Status != 422 || !strings.Contains(a.str("message"), "delta") {
		t.Errorf("grant without delta: %d %s", a.Status, a.Raw)
	}
	if p := s.paymentRows(id)["points"]; p["status"] != "TRADE_SUCCESS" {
		t.Fatalf("payment_info: %v", p)
	}

	a = s.refund(id, user)
	if a.Status != 200 || orderOf(a)["status"] != "refunded" {
		t.Fatalf("refund: %d %s", a.Status, a.Raw)
	}
	if b := s.balance(user); b != 500 {
		t.Fatalf("balance after the refund: %d", b)
	}
	if a := s.refund(id, user); a.Status != 409 {
		t.Errorf("second refund: %d %s", a.Status, a.Raw)
	}
	if b := s.balance(user); b != 500 {
		t.Fatalf("balance after a second refund: %d", b)
	}
	var log []struct {
		Type  string `db:"type"`
		Delta int64  `db:"delta"`
	}
	if err := s.app.DB.Select(&log, "SELECT type, delta FROM points_log WHERE out_trade_no = ? ORDER BY id", id); err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Type != "pay" || log[0].Delta != -500 || log[1].Type != "refund" || log[1].Delta != 500 {
		t.Fatalf("points_log: %+v", log)
	}
	s.buyEventually(item, user)
	if st := s.settled(item); st.Refunded != 1 || st.Unpaid != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnpaidOrdersExpire(t *testing.T) { testUnpaidOrdersExpire(t, start) }

func testUnpaidOrdersExpire(t *testing.T, start starter) {
	s := start(t, func(c *config.Config) { c.OrderTTL = 2 * time.Second })
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 2, "shards": 2})
	const a, b, c = 31, 32, 33
	idA, idB := s.buyOrder(item, a), s.buyOrder(item, b)
	testenv.Eventually(t, 5*time.Second, func() error {
		if r := s.buy(item, s.token(c)); r.Status != 410 {
			return fmt.Errorf("buy of a third user: %d %s", r.Status, r.Raw)
		}
		return nil
	})
	// A has an open trade at the sandbox: the sweep must close it first.
	s.waitStatus(idA, a, "unpaid", 5*time.Second)
	s.openCashier(s.payURL(idA, a))
	w := s.watch(idB, b)
	w.expect(idB, "unpaid")

	s.waitStatus(idA, a, "cancelled", 8*time.Second)
	w.expect(idB, "cancelled")
	if tr, ok := s.sim.Trade(idA); !ok || tr.Status != alipay.TradeClosed {
		t.Fatalf("sandbox trade of the expired order: %+v", tr)
	}
	if err := s.sim.Pay(context.Background(), idA); !errors.Is(err, paysim.ErrTradeClosed) {
		t.Fatalf("paying a closed trade: %v", err)
	}
	if r := s.pay(idA, a, map[string]string{"channel": "alipay"}); r.Status != 409 {
		t.Fatalf("paying a cancelled order: %d %s", r.Status, r.Raw)
	}
	if got := s.orderStatus(idA, a); got != "cancelled" {
		t.Fatalf("order A: %s", got)
	}

	// The same user buys again, and the sold-out item sells to another.
	s.buyEventually(item, a)
	s.buyEventually(item, c)
	st := s.settled(item)
	if st.Cancelled < 2 {
		t.Fatalf("stats %+v", st)
	}
	var left int64
	if err := s.app.DB.Get(&left, "SELECT stock_left FROM seckill_item WHERE id = ?", item); err != nil {
		t.Fatal(err)
	}
	if left != st.Stock-st.Unpaid-st.Paid {
		t.Fatalf("stock_left %d, stats %+v", left, st)
	}
}

// TestNotifyRacesExpiry pays orders in the sandbox around the moment they
// expire: every order ends paid or cancelled, a payment that lost to the
// cancel is refunded, and the stock adds up.
func TestNotifyRacesExpiry(t *testing.T) {
	// Long enough for an order's row and pay URL to come under -race on a
	// loaded box before it is due to be paid (a row took seconds there).
	const ttl = 8 * time.Second
	s := start(t, func(c *config.Config) { c.OrderTTL = ttl })
	const n = 30
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": n, "shards": 4, "price": "5.00"})
	ids := make([]string, n)
	payErr := make([]error, n)
	var wg sync.WaitGroup
	for i := range ids {
		// Each order is paid around its own expiry, from 2s before to 2s
		// after: timed from when it was bought, not from the end of the
		// setup, which under -race on a loaded box took longer than the
		// TTL (the first orders expired before they could be paid for).
		// The setup of the orders runs side by side for the same reason.
		bought := time.Now()
		ids[i] = s.buyRetrying(item, int64(100+i))
		payAt := bought.Add(ttl + time.Duration(rand.IntN(4000)-2000)*time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Before its row exists the order is pending: 409, try again.
			a := s.pay(ids[i], int64(100+i), map[string]string{"channel": "alipay"})
			for a.Status == 409 && strings.Contains(a.str("message"), "pending") && time.Until(payAt) > 0 {
				time.Sleep(50 * time.Millisecond)
				a = s.pay(ids[i], int64(100+i), map[string]string{"channel": "alipay"})
			}
			url := a.str("pay_url")
			if a.Status != 200 || url == "" {
				t.Errorf("pay %s with alipay: %d %s", ids[i], a.Status, a.Raw)
				return
			}
			// Every third buyer opens the cashier only when paying,
			// maybe after the sweep found no trade and cancelled: that
			// payment must be refunded.
			if i%3 != 0 {
				if err := s.get200(url); err != nil {
					t.Errorf("cashier page of %s: %v", ids[i], err)
					return
				}
			}
			time.Sleep(time.Until(payAt))
			if i%3 == 0 {
				resp, err := s.http.Get(url)
				if err != nil {
					payErr[i] = err
					return
				}
				resp.Body.Close()
			}
			payErr[i] = s.sim.Pay(context.Background(), ids[i])
		}()
	}
	wg.Wait()

	statusOf := func() map[string]string {
		var rows []struct {
			OrderID string `db:"order_id"`
			Status  string `db:"status"`
		}
		if err := s.app.DB.Select(&rows, "SELECT order_id, status FROM seckill_order WHERE item_id = ?", item); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rows {
			out[r.OrderID] = r.Status
		}
		return out
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		for id, st := range statusOf() {
			if st != "paid" && st != "cancelled" {
				return fmt.Errorf("order %s is %s", id, st)
			}
		}
		var flagged int
		if err := s.app.DB.Get(&flagged, "SELECT COUNT(*) FROM payment_info WHERE status = 'REFUND_NEEDED'"); err != nil || flagged != 0 {
			return fmt.Errorf("%d payments still flagged for refund (%v)", flagged, err)
		}
		return nil
	})
	final := statusOf()
	var paid, cancelled, refundedLate int
	for i, id := range ids {
		tr, _ := s.sim.Trade(id)
		p := s.paymentRows(id)["alipay"]
		switch final[id] {
		case "paid":
			paid++
			if payErr[i] != nil || tr.Status != alipay.TradeSuccess || p["status"] != alipay.TradeSuccess {
				t.Errorf("paid order %s: pay %v, trade %+v, payment_info %v", id, payErr[i], tr, p)
			}
		case "cancelled":
			cancelled++
			if payErr[i] == nil { // the buyer paid after all: the money went back
				refundedLate++
				if tr.Status != alipay.TradeClosed || tr.RefundFee != "5.00" || p["status"] != "REFUNDED" {
					t.Errorf("cancelled order %s paid late: trade %+v, payment_info %v", id, tr, p)
				}
			} else if tr.Status == alipay.TradeSuccess || !errors.Is(payErr[i], paysim.ErrTradeClosed) {
				t.Errorf("cancelled order %s: pay %v, trade %+v", id, payErr[i], tr)
			}
		default:
			t.Errorf("order %s is %s", id, final[id])
		}
	}
	t.Logf("%d paid, %d cancelled (%d of them paid late and refunded)", paid, cancelled, refundedLate)
	st := s.settled(item)
	if st.Paid != int64(paid) || st.Cancelled != int64(cancelled) || st.Remaining != int64(cancelled) {
		t.Fatalf("stats %+v with %d paid, %d cancelled", st, paid, cancelled)
	}
	var left int64
	if err := s.app.DB.Get(&left, "SELECT stock_left FROM seckill_item WHERE id = ?", item); err != nil || left != int64(n-paid) {
		t.Fatalf("stock_left %d (%v), want %d", left, err, n-paid)
	}
}

// TestStatusPushCrossesProcesses watches an order on one gateway while
// another process writes, pays and refunds it.
func TestStatusPushCrossesProcesses(t *testing.T) {
	s := start(t, nil)
	cfg := *s.app.Config
	cfg.HTTPAddr, cfg.AdminAddr, cfg.PaysimAddr, cfg.PublicURL = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""
	other := testenv.Start(t, &cfg)
	s2 := &stack{t: t, app: other, gw: "http://" + other.HTTPAddr, admin: "http://" + other.AdminAddr, http: s.http}

	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 1, "shards": 1, "points": 10})
	const user = 41
	s.points(user, 10)
	id := s.buyOrder(item, user)
	w := s2.watch(id, user)
	w.expect(id, "unpaid")
	if a := s.pay(id, user, map[string]string{"channel": "points"}); a.Status != 200 {
		t.Fatalf("points pay: %d %s", a.Status, a.Raw)
	}
	w.expect(id, "paid")
	if a := s.refund(id, user); a.Status != 200 {
		t.Fatalf("refund: %d %s", a.Status, a.Raw)
	}
	w.expect(id, "refunded")
}

// TestWebSocketClosesOnShutdown checks that a status WebSocket is closed
// with "going away" when its gateway shuts down, and that the shutdown
// does not wait for the client.
func TestWebSocketClosesOnShutdown(t *testing.T) {
	cfg := testenv.Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.Start(ctx, cfg, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Wait(ctx) }()
	s := &stack{t: t, app: a, gw: "http://" + a.HTTPAddr, admin: "http://" + a.AdminAddr, http: &http.Client{Timeout: 10 * time.Second}}
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 1})
	id := s.buyOrder(item, 51)
	w := s.watch(id, 51)
	w.expect(id, "unpaid")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no shutdown in 20s")
	}
	select {
	case _, ok := <-w.msgs:
		if ok {
			t.Fatal("a message after shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the websocket is still open after shutdown")
	}
	if !websocket.IsCloseError(w.err, websocket.CloseGoingAway) {
		t.Fatalf("websocket ended with %v, want close 1001", w.err)
	}
}

// TestPointsPayClosesAlipayTrade pays with points an order whose Alipay
// cashier is open: the trade is closed first, so the buyer cannot pay twice.
func TestPointsPayClosesAlipayTrade(t *testing.T) {
	s := start(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 1, "shards": 1, "points": 300})
	const user = 61
	id := s.buyOrder(item, user)
	s.openCashier(s.payURL(id, user))
	s.points(user, 300)
	if a := s.pay(id, user, map[string]string{"channel": "points"}); a.Status != 200 || orderOf(a)["status"] != "paid" {
		t.Fatalf("points pay: %d %s", a.Status, a.Raw)
	}
	if tr, _ := s.sim.Trade(id); tr.Status != alipay.TradeClosed {
		t.Fatalf("sandbox trade: %+v", tr)
	}
	if err := s.sim.Pay(context.Background(), id); !errors.Is(err, paysim.ErrTradeClosed) {
		t.Fatalf("paying the closed trade: %v", err)
	}
	rows := s.paymentRows(id)
	if rows["alipay"]["status"] != "TRADE_CLOSED" || rows["points"]["status"] != "TRADE_SUCCESS" {
		t.Fatalf("payment_info: %v", rows)
	}
	if b := s.balance(user); b != 0 {
		t.Fatalf("balance %d", b)
	}
}
