// Package gateway is flashgate's public front door: a fasthttp server that
// answers shoppers. The buy path rejects at the edge without I/O (token,
// limits, cached item state), then runs one Redis script and hands the
// reservation to Kafka without waiting for it.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/captcha"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/logging"
	"github.com/flashgate/flashgate/internal/mysql"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/webasset"
)

// Config configures a Gateway.
type Config struct {
	// MaxInflight caps the buys running Redis at once; over it the gateway
	// answers 503 at once instead of queueing. 0: no cap.
	MaxInflight int
	// IOTimeout bounds the Redis and MySQL work of a request; default 2s.
	IOTimeout time.Duration
	// Ready reports whether Kafka is reachable, for /readyz.
	KafkaReady func(context.Context) error

	// Edge protection, see docs/edge.md. The zero values turn each off.

	// UserRate and IPRate are the buys per second a shopper and a client
	// address may send, with a burst of as many; 0 turns a limit off.
	UserRate, IPRate float64
	// TrustedProxies are the reverse proxies (addresses or CIDR networks)
	// whose X-Forwarded-For names the client.
	TrustedProxies []string
	// AutobanAfter rate-limited buys within AutobanWindow ban a shopper for
	// AutobanFor; 0 turns automatic bans off.
	AutobanAfter  int
	AutobanWindow time.Duration
	AutobanFor    time.Duration
	// PathSecret keys the hidden buy path tokens (the auth secret will do: a
	// key of their own is derived from it). Empty: a random one, so that
	// tokens hold on this gateway only.
	PathSecret []byte
	// MaxConnsPerIP caps the connections one peer address holds open; 0: no
	// cap. Behind a proxy every client shares its address.
	MaxConnsPerIP int
	// AccessLog logs a line per request (FLASHGATE_ACCESS_LOG); off, the
	// handler is not wrapped at all.
	AccessLog bool
	// WarnEvery is how often a warning that every request repeats during
	// a dependency outage is logged, as a count, after its first line;
	// default 10s.
	WarnEvery time.Duration

	// AckKafka makes a buy answer 202 only once Kafka acknowledged its
	// reservation (FLASHGATE_ACK=kafka, contract §14); without an
	// acknowledgement within IOTimeout it answers 503 with the order id,
	// and the reservation stays in the outbox for the relay.
	AckKafka bool
	// PublicIPRate is the requests per second a client address may send to
	// the other public endpoints that cost I/O or CPU (item, activities,
	// pay, refund, the order WebSocket, Alipay's notify and return), with a
	// burst of as many; 0 turns it off.
	PublicIPRate float64
}

// Gateway is the public HTTP server.
type Gateway struct {
	cfg      Config
	store    *redis.Store
	db       *mysql.DB
	producer *kafka.Producer
	auth     *auth.Signer
	tokens   *auth.Cache // auth's verifications, remembered (Shopper)
	ids      *flashgate.OrderIDs
	log      *slog.Logger
	server   *fasthttp.Server
	metrics  fasthttp.RequestHandler
	m        *metrics
	guard    *guard
	captchas *captcha.Captchas
	web      *webasset.Set
	live     *liveCounts
	err      error // a bad setting, returned by Serve
	// base is the context of the gateway's I/O, cancelled once it has
	// shut down. A RequestCtx must not be one: database/sql and
	// context.WithTimeout watch its Done from goroutines that outlive the
	// request and race with fasthttp's shutdown.
	base context.Context
	stop context.CancelFunc

	// io is the context of the requests' Redis and MySQL calls: it carries
	// a deadline IOTimeout away, renewed every tenth of it by one goroutine,
	// so that a request never waits on a dead dependency yet pays no timer
	// of its own.
	io atomic.Pointer[ioDeadline]

	inflight atomic.Int64
	ready    atomic.Bool
	bufs     sync.Pool

	// activities is the snapshot of GET /api/v1/activities: refreshed by
	// one request at a time, with no lock held across its I/O, while the
	// others answer with the snapshot in hand.
	activities struct {
		snap       atomic.Pointer[activitiesSnap]
		mu         sync.Mutex
		refreshing chan struct{} // closed when the refresh in flight ends; nil: none
	}

	// routes are what the gateway answers besides the buy, which handle
	// checks first: the built-in routes, then those mounted with Handle.
	routes []route

	// warns holds a rate-limited logger per warning that a dependency
	// outage repeats for every request (see warn).
	warns map[string]*logging.Limited
}

// RouteHandler answers a request of a mounted route and returns the name of
// the route it served and the contract code of its answer: the gateway
// counts them in flashgate_gateway_requests_total{route,code}.
type RouteHandler func(ctx *fasthttp.RequestCtx) (route string, code flashgate.Code)

// New returns a gateway. reg collects its metrics and is served on /metrics.
func New(cfg Config, store *redis.Store, db *mysql.DB, producer *kafka.Producer, signer *auth.Signer, log *slog.Logger, reg *prometheus.Registry) *Gateway {
	g := &Gateway{cfg: cfg, store: store, db: db, producer: producer, auth: signer,
		ids: flashgate.NewOrderIDs(), log: log, m: newMetrics(reg)}
	if signer != nil {
		g.tokens = signer.NewCache(auth.DefaultCacheSlots)
	}
	if g.cfg.IOTimeout <= 0 {
		g.cfg.IOTimeout = 2 * time.Second
	}
	g.base, g.stop = context.WithCancel(context.Background())
	g.renewIO(time.Now())
	g.bufs.New = func() any { b := make([]byte, 0, 256); return &b }
	g.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	g.guard, g.err = newGuard(cfg, store, log, reg)
	g.web = loadWeb()
	if store != nil && producer != nil {
		store.Announce(g.announce)
	}
	if store != nil {
		// Drawing a captcha costs a millisecond of CPU: at most half the
		// cores draw at once, so a flood of captcha requests cannot starve
		// the buys.
		g.captchas = captcha.New(store.Client(), store.Prefix(), runtime.GOMAXPROCS(0)/2)
		g.live = newLiveCounts(store, log)
	}
	g.warns = newWarns(log, cfg.WarnEvery)
	handler := g.handle
	if cfg.AccessLog {
		handler = logging.AccessFastHTTP(log, g.handle)
	}
	// Limits against slow and greedy clients (docs/edge.md): ReadTimeout
	// bounds the whole request, headers included, so a client dribbling
	// its headers is cut off after it; headers must fit ReadBufferSize
	// (else 431). Hijacked connections (WebSockets) are exempt.
	g.server = &fasthttp.Server{
		Handler:                      handler,
		ErrorHandler:                 requestError,
		Name:                         "flashgate",
		ReadTimeout:                  5 * time.Second,
		WriteTimeout:                 10 * time.Second,
		IdleTimeout:                  60 * time.Second,
		MaxRequestBodySize:           64 << 10,
		ReadBufferSize:               8 << 10,
		MaxConnsPerIP:                cfg.MaxConnsPerIP,
		MaxIdleWorkerDuration:        10 * time.Second,
		ReduceMemoryUsage:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{log},
	}
	g.routes = g.builtinRoutes()
	g.ready.Store(true)
	return g
}

// builtinRoutes are the gateway's own routes (contract §5 and §9).
func (g *Gateway) builtinRoutes() []route {
	return []route{
		// The buy never gets here (handle answers it first); the entry
		// lists it and gives other methods on its path their 405.
		newRoute("POST", "/api/v1/seckill/{item_id}", g.handleBuy),
		newRoute("GET", "/api/v1/seckill/{item_id}/path", func(ctx *fasthttp.RequestCtx) {
			g.count(routePath, g.buyPath(ctx, ctx.Path()[len(pathSeckill):]))
		}),
		newRoute("GET", "/api/v1/items/{item_id}", func(ctx *fasthttp.RequestCtx) {
			if !g.admitPublic(ctx, requestTime(ctx)) {
				g.count(routeItem, flashgate.RateLimited)
				return
			}
			g.count(routeItem, g.item(ctx, ctx.Path()[len(pathItems):]))
		}),
		newRoute("GET", "/api/v1/orders/{order_id}", func(ctx *fasthttp.RequestCtx) {
			g.count(routeOrder, g.order(ctx, ctx.Path()[len(pathOrders):]))
		}),
		newRoute("GET", "/api/v1/activities", func(ctx *fasthttp.RequestCtx) {
			if !g.admitPublic(ctx, requestTime(ctx)) {
				g.count(routeActivities, flashgate.RateLimited)
				return
			}
			g.count(routeActivities, g.listActivities(ctx))
		}),
		newRoute("GET", "/healthz", func(ctx *fasthttp.RequestCtx) {
			writeJSON(ctx, 200, map[string]string{"code": "ok"})
		}),
		newRoute("GET", "/readyz", g.readyz),
		newRoute("GET", "/metrics", func(ctx *fasthttp.RequestCtx) { g.metrics(ctx) }),
		// The captcha and the storefront (contract §12, web.go).
		newRoute("GET", "/api/v1/captcha", func(ctx *fasthttp.RequestCtx) { g.count(routeCaptcha, g.captcha(ctx)) }),
		newRoute("GET", "/", g.pageRoute("index.html")),
		newRoute("GET", "/index.html", g.pageRoute("index.html")),
		newRoute("GET", "/items/{item_id}", g.itemPage),
		newRoute("GET", "/static/{file...}", func(ctx *fasthttp.RequestCtx) {
			g.count(routePage, g.page(ctx, string(ctx.Path()[1:])))
		}),
		newRoute("GET", "/favicon.ico", g.pageRoute("static/favicon.svg")),
	}
}

// Handle mounts an extra handler for method and the path pattern (see
// Route: "/api/v1/orders/{order_id}/pay"). Call it before Serve. Its answers
// are counted as route "other", with the code their HTTP status stands
// for; HandleRoute names them.
func (g *Gateway) Handle(method, pattern string, h fasthttp.RequestHandler) {
	limited := publicLimited(pattern)
	g.routes = append(g.routes, newRoute(method, pattern, func(ctx *fasthttp.RequestCtx) {
		if limited && !g.admitPublic(ctx, requestTime(ctx)) {
			g.m.countMounted(routeOther, flashgate.RateLimited)
			return
		}
		h(ctx)
		g.m.countMounted(routeOther, codeOfStatus(ctx.Response.StatusCode()))
	}))
}

// HandleRoute mounts an extra handler for method and the path pattern,
// which names the route of each answer. routes are the names it may
// return: their counters exist at 0 from the start (another name counts as
// "other"). Call it before Serve.
func (g *Gateway) HandleRoute(method, pattern string, routes []string, h RouteHandler) {
	g.m.mount(routes...)
	limited := publicLimited(pattern)
	g.routes = append(g.routes, newRoute(method, pattern, func(ctx *fasthttp.RequestCtx) {
		if limited && !g.admitPublic(ctx, requestTime(ctx)) {
			g.m.countMounted(routeOther, flashgate.RateLimited)
			return
		}
		g.m.countMounted(h(ctx))
	}))
}

// publicLimited reports whether a mounted route is under PublicIPRate: the
// order actions (pay, refund, the WebSocket) and Alipay's notify and return
// (an RSA verification each, unauthenticated).
func publicLimited(pattern string) bool {
	return strings.HasPrefix(pattern, "/api/v1/orders/") || strings.HasPrefix(pattern, "/pay/")
}

// Server returns the underlying fasthttp server so that callers can tune it
// before Serve.
func (g *Gateway) Server() *fasthttp.Server { return g.server }

// Serve answers on ln until ctx is done, then fails readiness, stops
// accepting and waits for the requests in flight.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	if g.err != nil {
		return g.err
	}
	// The edge's background work lives as long as the server and ends after
	// the requests in flight: g.stop comes after the shutdown below.
	var edgeWork sync.WaitGroup
	g.guard.start(g.base, &edgeWork)
	if g.live != nil {
		edgeWork.Go(func() { g.live.run(g.base) })
	}
	edgeWork.Add(1)
	go func() {
		defer edgeWork.Done()
		t := time.NewTicker(g.cfg.IOTimeout / 10)
		defer t.Stop()
		for {
			select {
			case <-g.base.Done():
				return
			case now := <-t.C:
				g.renewIO(now)
			}
		}
	}()
	defer func() {
		g.stop()
		edgeWork.Wait()
		g.flushWarns()
	}()
	errc := make(chan error, 1)
	go func() { errc <- g.server.Serve(readAheadListener{ln}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	g.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := g.server.ShutdownWithContext(sctx)
	// fasthttp closes only the listeners Serve has registered: stopped
	// right after starting, Serve may not have got there yet and would
	// then accept forever. Closed here, it returns nil at once.
	ln.Close()
	g.stop()
	if e := <-errc; err == nil {
		err = e
	}
	return err
}

var (
	pathSeckill = []byte("/api/v1/seckill/")
	pathItems   = []byte("/api/v1/items/")
	pathOrders  = []byte("/api/v1/orders/")
	bearer      = []byte("Bearer ")
)

// handle answers a request. The buy comes first, before any route table:
// it is the one route whose speed matters.
func (g *Gateway) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	if ctx.IsPost() && bytes.HasPrefix(path, pathSeckill) && bytes.IndexByte(path[len(pathSeckill):], '/') < 0 {
		g.handleBuy(ctx)
		return
	}
	g.dispatch(ctx, path)
}

// handleBuy is POST /api/v1/seckill/{item_id}; any POST of one segment
// under the prefix is a buy, so that a malformed item id gets the buy's own
// 400.
func (g *Gateway) handleBuy(ctx *fasthttp.RequestCtx) {
	// The time the request was read is the start of the answer and the
	// time every check is made at: no clock read of our own but the
	// latency's end.
	now := requestTime(ctx)
	code := g.buy(ctx, ctx.Path()[len(pathSeckill):], now)
	g.m.observeBuy(code, time.Since(now))
	g.live.count(ctx.Path()[len(pathSeckill):], code)
}

type ioDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// renewIO installs a fresh deadline context and releases the one before the
// previous: a request that took the previous one may still be using it.
func (g *Gateway) renewIO(now time.Time) {
	ctx, cancel := context.WithDeadline(g.base, now.Add(g.cfg.IOTimeout))
	old := g.io.Swap(&ioDeadline{ctx: ctx, cancel: cancel})
	if old != nil {
		// old expires by itself within IOTimeout; cancel it then so that
		// its resources go even if the timer is late.
		time.AfterFunc(g.cfg.IOTimeout, old.cancel)
	}
}

// ioContext returns the context for a request's I/O: its deadline is at
// least nine tenths of IOTimeout away.
func (g *Gateway) ioContext() context.Context { return g.io.Load().ctx }

// parseID parses a positive int64 written in decimal.
func parseID(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 || b[0] == '0' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// Shopper returns the user id of the request's bearer token.
func (g *Gateway) Shopper(ctx *fasthttp.RequestCtx) (int64, bool) {
	return g.shopper(ctx, requestTime(ctx))
}

// shopper is Shopper at now.
func (g *Gateway) shopper(ctx *fasthttp.RequestCtx, now time.Time) (int64, bool) {
	h := ctx.Request.Header.PeekBytes([]byte("Authorization"))
	if len(h) <= len(bearer) || !bytes.EqualFold(h[:len(bearer)], bearer) {
		return 0, false
	}
	// Through the cache: a shopper's retries, and every request of a
	// sold-out storm, carry a token already verified, and the HMAC was
	// half of the handler's time on the sold-out path.
	user, err := g.tokens.Verify(h[len(bearer):], now)
	return user, err == nil
}

// requestTime is when the request was read. A RequestCtx built by hand
// (fasthttpadaptor, tests) has no such time, and the zero time would make
// every token and ban look current: it is then the present.
func requestTime(ctx *fasthttp.RequestCtx) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return time.Now()
}

// buy is POST /api/v1/seckill/{item_id}. Every answer before reserve is
// given from memory and allocates nothing; the checks run cheapest first,
// the client address's before the token (docs/edge.md).
func (g *Gateway) buy(ctx *fasthttp.RequestCtx, rest []byte, now time.Time) flashgate.Code {
	if code, ok := g.admitIP(ctx, now); !ok {
		return code
	}
	id, ok := parseID(rest)
	if !ok {
		return rejectWith(ctx, flashgate.Invalid, bodyBadItemID)
	}
	user, ok := g.shopper(ctx, now)
	if !ok {
		return reject(ctx, flashgate.Unauthorized)
	}
	if code, ok := g.admitUser(ctx, user, now); !ok {
		return code
	}
	it, err := g.store.Items().Get(g.ioContext(), id, now)
	if err != nil {
		g.warn("read item state", "item", id, "err", err)
		return reject(ctx, flashgate.Unavailable)
	}
	if it.Missing {
		return reject(ctx, flashgate.NotFound)
	}
	g.live.track(id)
	if it.NeedsPath() {
		if code, ok := g.admitPath(ctx, user, id, now); !ok {
			return code
		}
	}
	switch it.StateAt(now, it.SoldOut) {
	case flashgate.StateUpcoming:
		return reject(ctx, flashgate.NotStarted)
	case flashgate.StateEnded:
		return reject(ctx, flashgate.Ended)
	case flashgate.StateSoldOut:
		if order, ok := it.Holder(user); ok {
			return duplicate(ctx, order)
		}
		return reject(ctx, flashgate.SoldOut)
	}
	if max := g.cfg.MaxInflight; max > 0 {
		if g.inflight.Add(1) > int64(max) {
			g.inflight.Add(-1)
			return reject(ctx, flashgate.Unavailable)
		}
		defer g.inflight.Add(-1)
	}
	return g.reserve(ctx, it, user, now)
}

func (g *Gateway) reserve(ctx *fasthttp.RequestCtx, it *redis.CachedItem, user int64, now time.Time) flashgate.Code {
	bp := g.bufs.Get().(*[]byte)
	defer g.bufs.Put(bp)
	idb := g.ids.Append((*bp)[:0], it.ID, now)
	r := flashgate.Reservation{OrderID: string(idb), ItemID: it.ID, UserID: user, Amount: it.Price, At: now}
	// The wire form gets a buffer of its own: Kafka holds it after the
	// response is written over the pooled one.
	res, err := g.store.Buy(g.ioContext(), it, &r, make([]byte, 0, 96))
	if err != nil {
		g.warn("reserve", "item", it.ID, "err", err)
		return rejectWith(ctx, flashgate.Unavailable, bodyMaybeTaken)
	}
	switch res.Outcome {
	case redis.DuplicateBuyer:
		// Never this very order: a retried script that had run answers
		// Reserved (Earlier), and Buy announces it again.
		return duplicate(ctx, res.OrderID)
	case redis.ShardEmpty:
		return reject(ctx, flashgate.SoldOut)
	}
	if err := res.Unannounced; err != nil && g.cfg.AckKafka {
		// The unit is taken and the reservation is in the outbox: without
		// an acknowledgement it still becomes an order (the relay produces
		// it), so the 503 names it and a retry answers duplicate.
		g.log.Warn("kafka acknowledgement", "item", it.ID, "order", r.OrderID, "err", err)
		return writeError(ctx, &flashgate.Error{Code: flashgate.Unavailable,
			Message: "kafka did not acknowledge the reservation in time; it is kept, retry to see it", OrderID: r.OrderID})
	}
	b := append(idb[len(idb):], `{"code":"ok","order_id":"`...)
	b = append(b, r.OrderID...)
	b = append(b, `","status":"pending"}`...)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetStatusCode(202)
	ctx.SetBody(b)
	return flashgate.OK
}

// announce hands the outbox entry of a reserve call to Kafka
// (redis.Announcer): one message for the reservations the call took. With
// FLASHGATE_ACK=kafka it returns once Kafka acknowledged it, and the
// call's buyers wait for it; otherwise it queues the message and returns.
func (g *Gateway) announce(ctx context.Context, key, value []byte) error {
	msg := kafka.Message{Key: key, Value: value}
	if g.cfg.AckKafka {
		return g.producer.Produce(ctx, msg)
	}
	g.producer.Enqueue(msg)
	return nil
}

// duplicate answers 409 with the order the user already holds.
func duplicate(ctx *fasthttp.RequestCtx, order string) flashgate.Code {
	return writeError(ctx, &flashgate.Error{Code: flashgate.Duplicate, Message: "you already hold an order for this item", OrderID: order})
}

// item is GET /api/v1/items/{item_id}.
func (g *Gateway) item(ctx *fasthttp.RequestCtx, rest []byte) flashgate.Code {
	id, ok := parseID(rest)
	if !ok {
		return writeError(ctx, flashgate.Errorf(flashgate.Invalid, "item_id: must be a positive integer"))
	}
	v, err := g.itemView(g.ioContext(), id, requestTime(ctx))
	if err != nil {
		return writeError(ctx, err)
	}
	writeJSON(ctx, 200, map[string]any{"code": "ok", "item": v})
	return flashgate.OK
}

func (g *Gateway) itemView(ctx context.Context, id int64, now time.Time) (*itemJSON, error) {
	it, err := g.store.Items().Get(ctx, id, now)
	if err != nil {
		g.warn("read item", "item", id, "err", err)
		return nil, flashgate.Errorf(flashgate.Unavailable, "item state unavailable")
	}
	if it.Missing {
		return nil, flashgate.Errorf(flashgate.NotFound, "item %d not found", id)
	}
	left, err := g.store.Remaining(ctx, it, now)
	if err != nil {
		g.warn("read remaining", "item", id, "err", err)
		return nil, flashgate.Errorf(flashgate.Unavailable, "item state unavailable")
	}
	return &itemJSON{ID: it.ID, ActivityID: it.ActivityID, Name: it.Name, Price: it.Price,
		StartAt: it.StartAt, EndAt: it.EndAt, Stock: it.Stock, Remaining: left,
		State:  it.StateAt(now, it.SoldOut || left == 0),
		Points: it.Points, RequirePath: it.NeedsPath(), RequireCaptcha: it.RequireCaptcha}, nil
}

// activitiesSnap is one rendering of GET /api/v1/activities.
type activitiesSnap struct {
	at   time.Time
	body []byte
}

// Snapshot ages: a snapshot younger than activitiesFresh is served as is;
// an older one is refreshed by one request while the others are served it,
// up to activitiesStale (past which they wait for the refresh, and a failed
// refresh answers 503).
const (
	activitiesFresh = time.Second
	activitiesStale = 30 * time.Second
)

// listActivities is GET /api/v1/activities, served from a snapshot.
func (g *Gateway) listActivities(ctx *fasthttp.RequestCtx) flashgate.Code {
	now := time.Now()
	snap := g.activities.snap.Load()
	if snap == nil || now.Sub(snap.at) >= activitiesFresh {
		var err error
		if snap, err = g.refreshActivities(now, snap); err != nil {
			return writeError(ctx, err)
		}
	}
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetBody(snap.body)
	return flashgate.OK
}

// refreshActivities returns a snapshot for a request that found old (nil:
// none) too old: it refreshes it unless a refresh is in flight, in which
// case it answers old while old is not too stale, else waits for the
// refresh.
func (g *Gateway) refreshActivities(now time.Time, old *activitiesSnap) (*activitiesSnap, error) {
	a := &g.activities
	a.mu.Lock()
	if wait := a.refreshing; wait != nil {
		a.mu.Unlock()
		if old != nil && now.Sub(old.at) < activitiesStale {
			return old, nil
		}
		select {
		case <-wait:
		case <-g.ioContext().Done():
		}
		if snap := a.snap.Load(); snap != nil && snap != old {
			return snap, nil
		}
		return nil, flashgate.Errorf(flashgate.Unavailable, "activities unavailable")
	}
	done := make(chan struct{})
	a.refreshing = done
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.refreshing = nil
		a.mu.Unlock()
		close(done)
	}()
	body, err := g.renderActivities(now)
	if err != nil {
		if old != nil && now.Sub(old.at) < activitiesStale {
			return old, nil
		}
		return nil, err
	}
	snap := &activitiesSnap{at: now, body: body}
	a.snap.Store(snap)
	return snap, nil
}

// renderActivities reads the open activities and their items' state.
func (g *Gateway) renderActivities(now time.Time) ([]byte, error) {
	acts, err := g.db.OpenActivities(g.ioContext(), now)
	if err != nil {
		g.warn("list activities", "err", err)
		return nil, flashgate.Errorf(flashgate.Unavailable, "activities unavailable")
	}
	type activityJSON struct {
		ID      int64      `json:"id"`
		Name    string     `json:"name"`
		StartAt time.Time  `json:"start_at"`
		EndAt   time.Time  `json:"end_at"`
		Items   []itemJSON `json:"items"`
	}
	out := make([]activityJSON, 0, len(acts))
	for _, a := range acts {
		aj := activityJSON{ID: a.ID, Name: a.Name, StartAt: a.StartAt, EndAt: a.EndAt, Items: []itemJSON{}}
		for _, it := range a.Items {
			v, err := g.itemView(g.ioContext(), it.ID, now)
			if err != nil {
				return nil, err
			}
			aj.Items = append(aj.Items, *v)
		}
		out = append(out, aj)
	}
	b, err := json.Marshal(map[string]any{"code": "ok", "activities": out})
	if err != nil {
		return nil, fmt.Errorf("encode activities: %w", err)
	}
	return b, nil
}

// order is GET /api/v1/orders/{order_id}.
func (g *Gateway) order(ctx *fasthttp.RequestCtx, rest []byte) flashgate.Code {
	user, ok := g.Shopper(ctx)
	if !ok {
		return reject(ctx, flashgate.Unauthorized)
	}
	o, err := g.Order(g.ioContext(), user, string(rest))
	if err != nil {
		return writeError(ctx, err)
	}
	writeJSON(ctx, 200, map[string]any{"code": "ok", "order": newOrderJSON(o)})
	return flashgate.OK
}

// Order returns the order id as user sees it: its row once it exists,
// pending while the user's buyer mark names it and it has no row yet (the
// reservation waits in the outbox or in Kafka), and not_found when it is
// unknown or someone else's.
func (g *Gateway) Order(ctx context.Context, user int64, id string) (*flashgate.Order, error) {
	itemID, ok := flashgate.OrderItem(id)
	if !ok {
		return nil, flashgate.Errorf(flashgate.NotFound, "order not found")
	}
	o, err := g.db.Order(ctx, id)
	if err != nil {
		g.warn("read order", "err", err)
		return nil, flashgate.Errorf(flashgate.Unavailable, "orders unavailable")
	}
	if o != nil {
		if o.UserID != user {
			return nil, flashgate.Errorf(flashgate.NotFound, "order not found")
		}
		return o, nil
	}
	it, err := g.store.Items().Get(ctx, itemID, time.Now())
	if err != nil {
		return nil, flashgate.Errorf(flashgate.Unavailable, "orders unavailable")
	}
	if it.Missing {
		return nil, flashgate.Errorf(flashgate.NotFound, "order not found")
	}
	r, ok, err := g.store.PendingOrder(ctx, it, user, id)
	if err != nil {
		return nil, flashgate.Errorf(flashgate.Unavailable, "orders unavailable")
	}
	if !ok {
		// The row may have been written between the two reads.
		if o, err := g.db.Order(ctx, id); err == nil && o != nil && o.UserID == user {
			return o, nil
		}
		return nil, flashgate.Errorf(flashgate.NotFound, "order not found")
	}
	return &flashgate.Order{ID: r.OrderID, ItemID: r.ItemID, UserID: r.UserID, Amount: r.Amount,
		Status: flashgate.OrderPending, CreatedAt: r.At}, nil
}

func (g *Gateway) readyz(ctx *fasthttp.RequestCtx) {
	if !g.ready.Load() {
		writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "shutting down"))
		return
	}
	if !g.guard.ready() {
		writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "ban list not loaded yet"))
		return
	}
	rctx, cancel := context.WithTimeout(g.base, 2*time.Second)
	defer cancel()
	if err := g.store.Ping(rctx); err != nil {
		writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "redis unreachable"))
		return
	}
	if err := g.store.Writable(rctx); err != nil {
		msg := "redis refuses writes: buys cannot be taken"
		if redis.IsOOM(err) {
			msg = "redis is out of memory (maxmemory reached, noeviction): buys cannot be taken; sold-out and duplicate answers still work"
		}
		writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "%s", msg))
		return
	}
	if g.cfg.KafkaReady != nil {
		if err := g.cfg.KafkaReady(rctx); err != nil {
			writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "kafka unreachable"))
			return
		}
	}
	writeJSON(ctx, 200, map[string]string{"code": "ok"})
}

type fasthttpLogger struct{ l *slog.Logger }

// Printf logs a message of fasthttp's with any token in it redacted.
func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", redactSecrets(fmt.Sprintf(format, args...)))
}
