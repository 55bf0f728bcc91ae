package payment

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/gateway"
	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
)

// Config configures a Service.
type Config struct {
	// OrderTTL is how long an order may stay unpaid (FLASHGATE_ORDER_TTL).
	OrderTTL time.Duration
	// PublicURL is the base of the notify and return URLs handed to Alipay.
	PublicURL string
	// Alipay is the Alipay client; nil turns the alipay channel off.
	Alipay *alipay.Client
	// Batch is the most expired orders one sweep transaction takes;
	// default 200.
	Batch int
	// PendingWait is how long a pay request waits for the row of an order
	// still pending (its reservation not yet written by a worker) before
	// answering conflict; default 2s.
	PendingWait time.Duration
	// Metrics registers the payment metrics (flashgate_payment_*); nil
	// keeps them unregistered.
	Metrics prometheus.Registerer
	// WSPerUser and WSMax cap the status WebSockets open at once, per
	// shopper and in all (FLASHGATE_WS_PER_USER, FLASHGATE_WS_MAX); over
	// either the upgrade answers 429. 0: no cap.
	WSPerUser, WSMax int
}

// Service runs the order lifecycle after the buy. Its methods are safe for
// concurrent use.
type Service struct {
	cfg    Config
	db     *mysql.DB
	store  *redis.Store
	pay    *alipay.Client
	log    *slog.Logger
	events *redis.OrderEvents
	m      *metrics

	// Set by MountGateway.
	gw     *gateway.Gateway
	signer *auth.Signer
	ws     websocket.FastHTTPUpgrader

	// base ends with Run's context: WebSockets close.
	base context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   sync.WaitGroup // WebSocket handlers

	statusReads atomic.Int64 // order reads made for WebSockets after the first
	// wsUsers counts the open WebSockets per shopper, wsOpen all of them
	// (both guarded by mu).
	wsUsers map[int64]int
	wsOpen  int
	// feeds are the shared reads of watched orders, by order id (guarded
	// by mu).
	feeds map[string]*feed
}

// StatusReads returns how many times the order of an open WebSocket has been
// read again (for a change of status, or a check): for tests and metrics.
func (s *Service) StatusReads() int64 { return s.statusReads.Load() }

// New returns a Service.
func New(cfg Config, db *mysql.DB, store *redis.Store, log *slog.Logger) *Service {
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.PendingWait <= 0 {
		cfg.PendingWait = 2 * time.Second
	}
	s := &Service{cfg: cfg, db: db, store: store, pay: cfg.Alipay, log: log, events: redis.NewOrderEvents(store), m: newMetrics(cfg.Metrics),
		wsUsers: map[int64]int{}, feeds: map[string]*feed{}}
	s.base, s.stop = context.WithCancel(context.Background())
	return s
}

// Run waits for ctx to end, then closes the WebSockets (1001 going away),
// waits for their handlers and ends the Redis subscriptions. Start it before
// the gateway serves; it returns before Redis may be closed.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stop()
	s.conns.Wait()
	s.events.Close()
	return nil
}

// track registers a WebSocket handler; false once shutting down.
func (s *Service) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns.Add(1)
	return true
}

// requestCtx is the context of one request's work. It is not the
// fasthttp.RequestCtx, whose Done races with the server's shutdown, and it
// does not end with the service: a request in flight at shutdown finishes,
// as the gateway drains it.
func (s *Service) requestCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// callCtx bounds one call to Alipay made for a request.
func (s *Service) callCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, 15*time.Second)
}

// changed announces orders whose status changed; closed ones get their unit
// back in Redis at once. Failures are logged: the watchers read the order
// on their next wake-up or poll, and the worker's restock job returns units
// that were missed.
func (s *Service) changed(ctx context.Context, status flashgate.OrderStatus, orders ...flashgate.Order) {
	if len(orders) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	ids := make([]string, len(orders))
	for i := range orders {
		ids[i] = orders[i].ID
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.store.PublishOrders(pctx, string(status), ids...); err != nil {
		s.log.Warn("publish order status", "status", status, "orders", len(ids), "err", err)
	}
	if status == flashgate.OrderCancelled || status == flashgate.OrderRefunded {
		for i := range orders {
			if err := s.restock(pctx, &orders[i]); err != nil {
				s.log.Warn("restock; the worker will retry", "order", orders[i].ID, "err", err)
			}
		}
	}
}

// restock returns the unit of a closed order to the user's home shard, lets
// the user buy again and clears the item's sold-out flag, as the worker's
// restock job does (both are idempotent: release.lua returns a unit once).
func (s *Service) restock(ctx context.Context, o *flashgate.Order) error {
	it, err := s.store.Items().Get(ctx, o.ItemID, time.Now())
	if err != nil {
		return err
	}
	if it.Missing {
		return errors.New("item not in redis")
	}
	released, err := s.store.Release(ctx, o.ItemID, flashgate.HomeShard(o.UserID, it.Shards), o.UserID, o.ID)
	if err != nil {
		return err
	}
	if released {
		if err := s.store.SetSoldOut(ctx, o.ItemID, false); err != nil {
			return err
		}
	}
	return s.db.MarkRestocked(ctx, o.ID)
}

// OrdersWritten is the worker's hook after it wrote a batch of
// reservations: it wakes the watchers of the new orders (pending until now).
func (s *Service) OrdersWritten(ctx context.Context, rs []flashgate.Reservation) {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.OrderID
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.PublishNewOrders(pctx, ids...); err != nil {
		s.log.Warn("publish new orders", "orders", len(ids), "err", err)
	}
}

// order returns an order as its owner sees it, waiting up to wait for the
// row of a pending one.
func (s *Service) order(ctx context.Context, user int64, id string, wait time.Duration) (*flashgate.Order, error) {
	deadline := time.Now().Add(wait)
	for {
		o, err := s.gw.Order(ctx, user, id)
		if err != nil || o.Status != flashgate.OrderPending || time.Now().After(deadline) {
			return o, err
		}
		select {
		case <-ctx.Done():
			return o, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// expiredBefore is the creation time before which an order has expired.
func (s *Service) expiredBefore(now time.Time) time.Time { return now.Add(-s.cfg.OrderTTL) }

func errPending(id string) error {
	return flashgate.Errorf(flashgate.Conflict, "order %s is pending, not unpaid yet; try again in a moment", id)
}

// GrantPoints adds delta (negative to take) to a user's points balance and
// returns it; conflict if it would go below zero.
func (s *Service) GrantPoints(ctx context.Context, user, delta int64) (int64, error) {
	return s.db.GrantPoints(ctx, user, delta)
}

// PayPoints pays an unpaid order of user with the item's points price, in
// one MySQL transaction. An Alipay trade handed out for the order is closed
// first, so that the buyer cannot pay twice; if it turns out paid, the
// answer is conflict and the order turns paid through Alipay.
func (s *Service) PayPoints(ctx context.Context, user int64, id string) (*flashgate.Order, error) {
	o, err := s.order(ctx, user, id, s.cfg.PendingWait)
	if err != nil {
		return nil, err
	}
	if o.Status == flashgate.OrderPending {
		return nil, errPending(id)
	}
	if o.Status != flashgate.OrderUnpaid {
		return nil, flashgate.Errorf(flashgate.Conflict, "order %s is %s, not unpaid", id, o.Status)
	}
	it, err := s.db.Item(ctx, o.ItemID)
	if err != nil {
		return nil, err
	}
	balance, err := s.db.PointsBalance(ctx, user)
	if err != nil {
		return nil, err
	}
	if balance < it.Points {
		return nil, flashgate.Errorf(flashgate.Conflict, "not enough points: the balance is %d, %d needed", balance, it.Points)
	}
	if err := s.closeTradeFor(ctx, o); err != nil {
		return nil, err
	}
	now := time.Now()
	o, err = s.db.PayWithPoints(ctx, id, user, it.Points, s.expiredBefore(now), now)
	if err != nil {
		return nil, err
	}
	s.m.paid.WithLabelValues(mysql.ChannelPoints).Inc()
	s.changed(ctx, flashgate.OrderPaid, *o)
	return o, nil
}

// closeTradeFor closes the open Alipay trade of an order about to be paid
// with points.
func (s *Service) closeTradeFor(ctx context.Context, o *flashgate.Order) error {
	p, err := s.db.Payment(ctx, o.ID, mysql.ChannelAlipay)
	if err != nil || p == nil || p.Status != mysql.PayWaiting || s.pay == nil {
		return err
	}
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	err = s.pay.Close(cctx, o.ID)
	switch {
	case err == nil, alipay.HasSubCode(err, alipay.SubTradeNotExist), alipay.HasSubCode(err, alipay.SubTradeHasClose):
		return s.db.TradeClosed(ctx, o.ID, mysql.ChannelAlipay)
	case alipay.HasSubCode(err, alipay.SubTradeStatusError):
		if err := s.settleTrade(cctx, o); err != nil {
			s.log.Warn("settle alipay trade", "order", o.ID, "err", err)
		}
		return flashgate.Errorf(flashgate.Conflict, "order %s is already paid through alipay", o.ID)
	}
	s.log.Warn("close alipay trade before paying with points", "order", o.ID, "err", err)
	return flashgate.Errorf(flashgate.Unavailable, "alipay is unreachable; try again")
}

// Refund refunds a paid order of user through the channel that paid it.
// Once the channel confirms, the order turns refunded, its unit goes back
// to stock and the user may buy again.
func (s *Service) Refund(ctx context.Context, user int64, id string) (*flashgate.Order, error) {
	o, err := s.gw.Order(ctx, user, id)
	if err != nil {
		return nil, err
	}
	if o.Status != flashgate.OrderPaid {
		return nil, flashgate.Errorf(flashgate.Conflict, "order %s is %s, not paid", id, o.Status)
	}
	p, err := s.db.PaidChannel(ctx, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, flashgate.Errorf(flashgate.Conflict, "order %s has no payment on record", id)
	}
	outRequestNo := id + "-R"
	now := time.Now()
	switch p.Channel {
	case mysql.ChannelPoints:
		o, err = s.db.RefundPoints(ctx, id, user, outRequestNo, now)
		if err != nil {
			return nil, err
		}
	case mysql.ChannelAlipay:
		if o, err = s.refundAlipay(ctx, o, outRequestNo, now); err != nil {
			return nil, err
		}
	default:
		return nil, flashgate.Errorf(flashgate.Conflict, "order %s was paid through %s, which cannot refund", id, p.Channel)
	}
	s.m.refunds.WithLabelValues(p.Channel).Inc()
	s.changed(ctx, flashgate.OrderRefunded, *o)
	return o, nil
}
