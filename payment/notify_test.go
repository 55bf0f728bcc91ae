package payment_test

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/paysim"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
	"github.com/flashgate/flashgate/payment"
)

const appID = "2021000000000001"

// The key pairs of internal/alipay's tests: the merchant's and the one
// playing Alipay.
func key(t *testing.T, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := alipay.LoadPrivateKey("../internal/alipay/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// env is a payment service on its own database and Redis prefix, with an
// Alipay sandbox whose key the test holds, so that it can sign any notify.
type env struct {
	t      *testing.T
	ctx    context.Context
	db     *mysql.DB
	store  *redis.Store
	svc    *payment.Service
	alipay *rsa.PrivateKey
	item   int64
	ids    *flashgate.OrderIDs
	nextID int64
}

func newEnv(t *testing.T, ttl time.Duration) *env {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.Database(t)
	if err := mysql.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	db, err := mysql.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := redis.Open(ctx, redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: testenv.Prefix(t), Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)

	merchant, alipayKey := key(t, "merchant_pkcs8.pem"), key(t, "alipay_private.pem")
	sim, err := paysim.New(paysim.Config{AppID: appID, MerchantPublicKey: &merchant.PublicKey, AlipayPrivateKey: alipayKey, NotifyBackoff: []time.Duration{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); sim.Close() })
	client := alipay.New(alipay.Config{Gateway: srv.URL + paysim.GatewayPath, AppID: appID, PrivateKey: merchant, AlipayPublicKey: &alipayKey.PublicKey}, nil)
	svc := payment.New(payment.Config{OrderTTL: ttl, PublicURL: "http://127.0.0.1:9", Alipay: client}, db, store, testenv.Logger(t))

	e := &env{t: t, ctx: ctx, db: db, store: store, svc: svc, alipay: alipayKey, ids: flashgate.NewOrderIDs(), nextID: 100}
	now := time.Now()
	act := &flashgate.Activity{Name: "sale", StartAt: now.Add(-time.Minute), EndAt: now.Add(time.Hour)}
	if act.ID, err = db.CreateActivity(ctx, act); err != nil {
		t.Fatal(err)
	}
	it := &flashgate.Item{ActivityID: act.ID, Name: "phone", Price: 1990, Points: 1990, Stock: 10, Shards: 1, StartAt: act.StartAt, EndAt: act.EndAt}
	if it.ID, err = db.AddItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Preload(ctx, it.ID, 0, it.Stock); err != nil {
		t.Fatal(err)
	}
	if err := store.PutItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	e.item = it.ID
	return e
}

// order reserves a unit for a new user and writes the order row, as the
// gateway and a worker would.
func (e *env) order() string {
	e.t.Helper()
	e.nextID++
	r := flashgate.Reservation{OrderID: e.ids.New(e.item), ItemID: e.item, UserID: e.nextID, Amount: 1990, At: time.Now().Truncate(time.Millisecond)}
	if res, err := e.store.Reserve(e.ctx, e.item, 0, r.UserID, r.OrderID, r.AppendWire(nil), r.At); err != nil || res.Outcome != redis.Reserved {
		e.t.Fatalf("reserve: %+v %v", res, err)
	}
	if res, err := e.db.WriteReservations(e.ctx, []flashgate.Reservation{r}); err != nil || res.Inserted != 1 {
		e.t.Fatalf("write: %+v %v", res, err)
	}
	return r.OrderID
}

// openTrade records the Alipay trade of an order as the pay endpoint does.
func (e *env) openTrade(id string) {
	e.t.Helper()
	o, err := e.db.Order(e.ctx, id)
	if err != nil || o == nil {
		e.t.Fatalf("order %s: %v", id, err)
	}
	if _, err := e.db.OpenAlipay(e.ctx, id, o.UserID, time.Now().Add(-time.Hour)); err != nil {
		e.t.Fatal(err)
	}
}

// notify returns a notify body as Alipay sends it, signed with key.
func (e *env) notify(id, status, amount string, key *rsa.PrivateKey, change func(url.Values)) []byte {
	e.t.Helper()
	v := url.Values{
		"notify_time": {time.Now().In(alipay.Beijing()).Format(alipay.TimeLayout)}, "notify_type": {"trade_status_sync"},
		"notify_id": {"nid" + time.Now().Format("150405.000000000")}, "app_id": {appID}, "charset": {"utf-8"},
		"version": {"1.0"}, "sign_type": {"RSA2"}, "trade_no": {"2026112122001400000000000001"},
		"out_trade_no": {id}, "trade_status": {status}, "total_amount": {amount}, "receipt_amount": {amount},
		"buyer_id": {"2088000000000001"}, "seller_id": {"2088000000000002"}, "subject": {"phone"},
		"gmt_payment": {time.Now().In(alipay.Beijing()).Format(alipay.TimeLayout)},
	}
	if change != nil {
		change(v)
	}
	sig, err := alipay.SignNotify(v, key)
	if err != nil {
		e.t.Fatal(err)
	}
	v.Set("sign", sig)
	return []byte(v.Encode())
}

type snapshot struct {
	status   flashgate.OrderStatus
	paidAt   *time.Time
	payments []mysql.PaymentInfo
	notifies int
}

func (e *env) snap(id string) snapshot {
	e.t.Helper()
	o, err := e.db.Order(e.ctx, id)
	if err != nil || o == nil {
		e.t.Fatalf("order %s: %v", id, err)
	}
	ps, err := e.db.Payments(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	var n int
	if err := e.db.Get(&n, "SELECT COUNT(*) FROM payment_notify WHERE order_id = ?", id); err != nil {
		e.t.Fatal(err)
	}
	return snapshot{o.Status, o.PaidAt, ps, n}
}

func (e *env) stockLeft() int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Get(&n, "SELECT stock_left FROM seckill_item WHERE id = ?", e.item); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func samePayments(a, b []mysql.PaymentInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Status != y.Status || x.TradeNo != y.TradeNo || x.CallbackContent != y.CallbackContent ||
			x.CallbackTime.Valid != y.CallbackTime.Valid || !x.CallbackTime.Time.Equal(y.CallbackTime.Time) {
			return false
		}
	}
	return true
}

func TestNotifyNotGenuineChangesNothing(t *testing.T) {
	e := newEnv(t, time.Hour)
	id := e.order()
	e.openTrade(id)
	forger := key(t, "merchant_pkcs1.pem") // any key but Alipay's
	cases := map[string][]byte{
		"forged signature": e.notify(id, alipay.TradeSuccess, "19.90", forger, nil),
		"wrong app id":     e.notify(id, alipay.TradeSuccess, "19.90", e.alipay, func(v url.Values) { v.Set("app_id", "2021000000009999") }),
		"wrong amount":     e.notify(id, alipay.TradeSuccess, "0.01", e.alipay, nil),
		"unknown order":    e.notify(e.ids.New(e.item), alipay.TradeSuccess, "19.90", e.alipay, nil),
		"not an order id":  e.notify("1234", alipay.TradeSuccess, "19.90", e.alipay, nil),
		"tampered amount": func() []byte {
			v, _ := url.ParseQuery(string(e.notify(id, alipay.TradeSuccess, "0.01", e.alipay, nil)))
			v.Set("total_amount", "19.90")
			return []byte(v.Encode())
		}(),
		"no signature": func() []byte {
			v, _ := url.ParseQuery(string(e.notify(id, alipay.TradeSuccess, "19.90", e.alipay, nil)))
			v.Del("sign")
			return []byte(v.Encode())
		}(),
		"not a form": []byte("%zz"),
	}
	before := e.snap(id)
	if len(before.payments) != 1 || before.payments[0].Status != mysql.PayWaiting {
		t.Fatalf("payment_info before: %+v", before.payments)
	}
	for name, body := range cases {
		if got := e.svc.Notify(e.ctx, body); got != "failure" {
			t.Errorf("%s: answered %q, want failure", name, got)
		}
		after := e.snap(id)
		if after.status != flashgate.OrderUnpaid || after.paidAt != nil || !samePayments(before.payments, after.payments) || after.notifies != 0 {
			t.Errorf("%s changed the order: %+v", name, after)
		}
	}
	var n int
	if err := e.db.Get(&n, "SELECT COUNT(*) FROM payment_notify"); err != nil || n != 0 {
		t.Fatalf("payment_notify has %d rows (%v), want none", n, err)
	}
}

func TestNotifyWithoutPaymentIsRecordedOnly(t *testing.T) {
	e := newEnv(t, time.Hour)
	id := e.order()
	e.openTrade(id)
	before := e.snap(id)
	for i, status := range []string{alipay.TradeWaitBuyerPay, alipay.TradeClosed, "SOMETHING_NEW"} {
		if got := e.svc.Notify(e.ctx, e.notify(id, status, "19.90", e.alipay, nil)); got != "success" {
			t.Fatalf("%s: answered %q", status, got)
		}
		after := e.snap(id)
		if after.status != flashgate.OrderUnpaid || !samePayments(before.payments, after.payments) || after.notifies != i+1 {
			t.Fatalf("%s: %+v", status, after)
		}
	}
	// A refund's notify saying TRADE_SUCCESS pays nothing either.
	body := e.notify(id, alipay.TradeSuccess, "19.90", e.alipay, func(v url.Values) { v.Set("refund_fee", "1.00"); v.Set("out_biz_no", "x") })
	if got := e.svc.Notify(e.ctx, body); got != "success" {
		t.Fatalf("refund notify: %q", got)
	}
	if after := e.snap(id); after.status != flashgate.OrderUnpaid || !samePayments(before.payments, after.payments) {
		t.Fatalf("refund notify paid the order: %+v", after)
	}
}

func TestNotifyPaysOnceAndReplaysChangeNothing(t *testing.T) {
	e := newEnv(t, time.Hour)
	id := e.order()
	e.openTrade(id)
	body := e.notify(id, alipay.TradeSuccess, "19.9", e.alipay, nil) // Alipay may drop the trailing 0
	if got := e.svc.Notify(e.ctx, body); got != "success" {
		t.Fatalf("notify: %q", got)
	}
	paid := e.snap(id)
	if paid.status != flashgate.OrderPaid || paid.paidAt == nil || paid.notifies != 1 {
		t.Fatalf("after notify: %+v", paid)
	}
	p := paid.payments[0]
	if p.Status != alipay.TradeSuccess || p.TradeNo.String != "2026112122001400000000000001" || !p.CallbackTime.Valid || p.CallbackContent.String != string(body) {
		t.Fatalf("payment_info after notify: %+v", p)
	}
	if left := e.stockLeft(); left != 9 {
		t.Fatalf("stock_left %d, want 9", left)
	}
	replays := [][]byte{
		body, // the same bytes again
		e.notify(id, alipay.TradeSuccess, "19.90", e.alipay, nil), // signed afresh, as Alipay's retries are
		e.notify(id, alipay.TradeFinished, "19.90", e.alipay, nil),
	}
	for i, r := range replays {
		if got := e.svc.Notify(e.ctx, r); got != "success" {
			t.Fatalf("replay %d: %q", i, got)
		}
		after := e.snap(id)
		if after.status != flashgate.OrderPaid || !after.paidAt.Equal(*paid.paidAt) || !samePayments(paid.payments, after.payments) || after.notifies != i+2 {
			t.Fatalf("replay %d changed the order: %+v", i, after)
		}
	}
	var outcomes []string
	if err := e.db.Select(&outcomes, "SELECT outcome FROM payment_notify WHERE order_id = ? ORDER BY id", id); err != nil {
		t.Fatal(err)
	}
	if want := []string{"paid", "replay", "replay", "replay"}; len(outcomes) != 4 || outcomes[0] != want[0] || outcomes[3] != want[3] {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	if left := e.stockLeft(); left != 9 {
		t.Fatalf("stock_left %d after replays, want 9", left)
	}
}

func TestNotifyAfterCancelIsFlaggedForRefund(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	id := e.order()
	if e.stockLeft() != 9 {
		t.Fatal("stock_left not taken")
	}
	time.Sleep(100 * time.Millisecond)
	if err := e.svc.Expire(e.ctx); err != nil {
		t.Fatal(err)
	}
	cancelled := e.snap(id)
	if cancelled.status != flashgate.OrderCancelled || len(cancelled.payments) != 0 {
		t.Fatalf("after the sweep: %+v", cancelled)
	}
	if left := e.stockLeft(); left != 10 {
		t.Fatalf("stock_left %d after cancel, want 10", left)
	}
	if left, err := e.store.RemainingNow(e.ctx, e.item, 1); err != nil || left != 10 {
		t.Fatalf("redis remaining %d (%v) after cancel, want 10", left, err)
	}

	body := e.notify(id, alipay.TradeSuccess, "19.90", e.alipay, nil)
	for i := range 2 {
		if got := e.svc.Notify(e.ctx, body); got != "success" {
			t.Fatalf("notify %d: %q", i, got)
		}
		after := e.snap(id)
		if after.status != flashgate.OrderCancelled || after.paidAt != nil || len(after.payments) != 1 || after.notifies != i+1 {
			t.Fatalf("notify %d: %+v", i, after)
		}
		p := after.payments[0]
		if p.Channel != mysql.ChannelAlipay || p.Status != mysql.PayRefundNeeded || p.TradeNo.String == "" || p.CallbackContent.String != string(body) || p.Amount != 1990 {
			t.Fatalf("notify %d: payment_info %+v", i, p)
		}
	}
	if left := e.stockLeft(); left != 10 {
		t.Fatalf("stock_left %d after the late notify, want 10", left)
	}
}

func TestSweepClosesTradesAndSkipsLockedOrders(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	plain, traded, locked := e.order(), e.order(), e.order()
	e.openTrade(traded) // never opened at Alipay: closing it answers TRADE_NOT_EXIST
	time.Sleep(100 * time.Millisecond)

	// A transaction holding a row (a notify in progress) makes the sweep
	// pass it by instead of waiting.
	tx, err := e.db.BeginTxx(e.ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT order_id FROM seckill_order WHERE order_id = ? FOR UPDATE", locked); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.svc.Expire(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the sweep waited %v for a locked row", d)
	}
	if s := e.snap(plain); s.status != flashgate.OrderCancelled {
		t.Errorf("order without a trade: %+v", s)
	}
	if s := e.snap(traded); s.status != flashgate.OrderCancelled || s.payments[0].Status != mysql.PayClosed {
		t.Errorf("order with a trade: %+v", s)
	}
	if s := e.snap(locked); s.status != flashgate.OrderUnpaid {
		t.Errorf("locked order: %+v", s)
	}
	tx.Rollback()
	if err := e.svc.Expire(e.ctx); err != nil {
		t.Fatal(err)
	}
	if s := e.snap(locked); s.status != flashgate.OrderCancelled {
		t.Errorf("locked order after release: %+v", s)
	}
	if left := e.stockLeft(); left != 10 {
		t.Fatalf("stock_left %d, want 10", left)
	}
}
