package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/edge"
	"github.com/flashgate/flashgate/internal/redis"
)

// pathLead is how long before its sale opens an item's path token is handed
// out (contract §9), so that shoppers can hold one when the sale starts.
const pathLead = 10 * time.Second

// guard is the gateway's edge protection (docs/edge.md): the checks a buy
// passes before it costs anything, in memory and without I/O. A part that
// is off lets everything through: a Limiter with a rate of 0, a nil
// resolver (no trusted proxy), a nil ban cache (no Redis).
type guard struct {
	users   *edge.Limiter
	ips     *edge.Limiter
	public  *edge.Limiter // per address, the other costly public endpoints
	proxies *edge.IPResolver
	bans    *edge.BanCache
	autoban *edge.AutoBanner
	paths   *edge.PathSigner
	fleet   *fleetShare // nil without Redis: the limits are then this process's

	rejects [numEdgeReasons]prometheus.Counter
}

// edgeReason is why the edge turned a buy away, for the metrics.
type edgeReason int

const (
	reasonIPBanned edgeReason = iota
	reasonUserBanned
	reasonIPRate
	reasonUserRate
	reasonPath
	reasonPublicRate
	numEdgeReasons
)

var edgeReasonNames = [numEdgeReasons]string{"ip_banned", "user_banned", "ip_rate", "user_rate", "path", "public_ip_rate"}

// newGuard builds the edge protection of cfg. The ban list lives in store's
// Redis under its prefix; without a store there is none.
func newGuard(cfg Config, store *redis.Store, log *slog.Logger, reg prometheus.Registerer) (*guard, error) {
	gd := &guard{
		users:  edge.NewLimiter(cfg.UserRate, 0),
		ips:    edge.NewLimiter(cfg.IPRate, 0),
		public: edge.NewLimiter(cfg.PublicIPRate, 0),
	}
	var err error
	if len(cfg.TrustedProxies) > 0 {
		if gd.proxies, err = edge.NewIPResolver(cfg.TrustedProxies); err != nil {
			err = fmt.Errorf("FLASHGATE_TRUSTED_PROXIES: %w", err)
		}
	}
	secret := cfg.PathSecret
	if len(secret) == 0 {
		// Tokens are then good on this gateway only; app always passes one.
		secret = []byte(rand.Text())
	}
	gd.paths = edge.NewPathSigner(secret)
	if store != nil {
		bans := edge.NewBanStore(store.Client(), store.Prefix())
		gd.bans = edge.NewBanCache(bans, log)
		gd.autoban = edge.NewAutoBanner(cfg.AutobanAfter, cfg.AutobanWindow, cfg.AutobanFor, bans, log)
		gd.fleet = newFleetShare(store, log, gd.users, gd.ips)
		reg.MustRegister(gd.fleet.size)
	}

	rejects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flashgate_gateway_edge_rejects_total",
		Help: "Buys turned away by the edge protection, by reason.",
	}, []string{"reason"})
	for r := range gd.rejects {
		gd.rejects[r] = rejects.WithLabelValues(edgeReasonNames[r])
	}
	keys := func(name string, l *edge.Limiter) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "flashgate_gateway_limiter_keys",
			Help:        "Token buckets held by a rate limiter (keys seen and not yet swept).",
			ConstLabels: prometheus.Labels{"limiter": name},
		}, func() float64 { return float64(l.Len()) })
	}
	reg.MustRegister(rejects, keys("user", gd.users), keys("ip", gd.ips), keys("public_ip", gd.public))
	return gd, err
}

// start runs the background work of the edge in goroutines that wg waits
// for: the limiters' sweepers, the fleet heartbeat (whose first beat it
// waits for), the ban cache's reload and the auto-banner. They stop when
// ctx is done.
func (gd *guard) start(ctx context.Context, wg *sync.WaitGroup) {
	if gd.fleet != nil {
		gd.fleet.start(ctx, wg)
	}
	wg.Go(func() { gd.users.Run(ctx) })
	wg.Go(func() { gd.ips.Run(ctx) })
	wg.Go(func() { gd.public.Run(ctx) })
	if gd.bans != nil {
		wg.Go(func() { gd.bans.Run(ctx) })
		wg.Go(func() { gd.autoban.Run(ctx) })
	}
}

// ready reports whether the ban list is loaded, so that a fresh gateway
// does not take traffic while it would let banned shoppers through.
func (gd *guard) ready() bool {
	if gd.bans == nil {
		return true
	}
	select {
	case <-gd.bans.Ready():
		return true
	default:
		return false
	}
}

const headerXFF = "X-Forwarded-For"

var pathSuffix = []byte("/path")

// Pre-rendered answers of the edge, so that turning a buy away allocates
// nothing.
var (
	bodyBanned    = renderReject(flashgate.Forbidden, "you are banned from buying")
	bodyNeedPath  = renderReject(flashgate.Forbidden, "this item needs a valid path token: GET /api/v1/seckill/{item_id}/path, then buy with ?path=TOKEN")
	bodyBadItemID = renderReject(flashgate.Invalid, "item_id: must be a positive integer")
)

func renderReject(code flashgate.Code, msg string) []byte {
	b, _ := json.Marshal(map[string]string{"code": string(code), "message": msg})
	return b
}

// rejectWith writes a pre-rendered body with code's status.
func rejectWith(ctx *fasthttp.RequestCtx, code flashgate.Code, body []byte) flashgate.Code {
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetStatusCode(flashgate.HTTPStatus(code))
	ctx.SetBody(body)
	return code
}

// clientIP is the address the request came from: the TCP peer, or behind a
// trusted proxy the client it names in X-Forwarded-For.
func (g *Gateway) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	remote, _ := netip.AddrFromSlice(ctx.RemoteIP())
	if g.guard.proxies == nil {
		return remote.Unmap()
	}
	xff := ctx.Request.Header.PeekAll(headerXFF)
	switch len(xff) {
	case 0:
		return g.guard.proxies.ClientIP(remote, nil)
	case 1:
		return g.guard.proxies.ClientIP(remote, xff[0])
	}
	// Several headers are one list, in order (RFC 9110 §5.3).
	bp := g.bufs.Get().(*[]byte)
	defer g.bufs.Put(bp)
	joined := (*bp)[:0]
	for i, v := range xff {
		if i > 0 {
			joined = append(joined, ',')
		}
		joined = append(joined, v...)
	}
	*bp = joined
	return g.guard.proxies.ClientIP(remote, joined)
}

// admitIP is the first check of a buy: is the client address banned, or
// over its rate? It runs before the shopper token is even looked at, so that
// a flood of bad tokens from one address is limited like any other.
func (g *Gateway) admitIP(ctx *fasthttp.RequestCtx, now time.Time) (flashgate.Code, bool) {
	gd := g.guard
	ip := g.clientIP(ctx)
	if gd.bans != nil && gd.bans.IPBanned(ip, now) {
		gd.rejects[reasonIPBanned].Inc()
		return rejectWith(ctx, flashgate.Forbidden, bodyBanned), false
	}
	if ok, wait := gd.ips.Allow(edge.HashAddr(ip), now); !ok {
		gd.rejects[reasonIPRate].Inc()
		return rateLimited(ctx, wait), false
	}
	return flashgate.OK, true
}

// admitPublic checks the client address against PublicIPRate, for the
// public endpoints other than the buy that cost I/O or CPU per request. It
// allocates nothing.
func (g *Gateway) admitPublic(ctx *fasthttp.RequestCtx, now time.Time) bool {
	gd := g.guard
	if ok, wait := gd.public.Allow(edge.HashAddr(g.clientIP(ctx)), now); !ok {
		gd.rejects[reasonPublicRate].Inc()
		rateLimited(ctx, wait)
		return false
	}
	return true
}

// admitUser checks the shopper once the token named them: banned, or over
// their rate? A shopper who keeps getting 429s is reported to the
// auto-banner.
func (g *Gateway) admitUser(ctx *fasthttp.RequestCtx, user int64, now time.Time) (flashgate.Code, bool) {
	gd := g.guard
	if gd.bans != nil && gd.bans.UserBanned(user, now) {
		gd.rejects[reasonUserBanned].Inc()
		return rejectWith(ctx, flashgate.Forbidden, bodyBanned), false
	}
	if ok, wait := gd.users.Allow(uint64(user), now); !ok {
		gd.rejects[reasonUserRate].Inc()
		gd.autoban.Record(user, now)
		return rateLimited(ctx, wait), false
	}
	return flashgate.OK, true
}

// admitPath checks the hidden buy path of an item that requires one: the
// query's path token must be the shopper's own for this item, and unexpired.
func (g *Gateway) admitPath(ctx *fasthttp.RequestCtx, user, item int64, now time.Time) (flashgate.Code, bool) {
	if g.guard.paths.Verify(ctx.QueryArgs().Peek("path"), user, item, now) {
		return flashgate.OK, true
	}
	g.guard.rejects[reasonPath].Inc()
	return rejectWith(ctx, flashgate.Forbidden, bodyNeedPath), false
}

// buyPath is GET /api/v1/seckill/{item_id}/path: the shopper's path token
// for the item, handed out from pathLead before the sale opens until it
// ends. It is issued for items that do not need one too (it is then
// ignored), so that clients need not know which do. Banned shoppers and
// addresses get none; the rate limits, which count buys, do not apply.
func (g *Gateway) buyPath(ctx *fasthttp.RequestCtx, rest []byte) flashgate.Code {
	id, ok := parseID(rest[:len(rest)-len(pathSuffix)])
	if !ok {
		return rejectWith(ctx, flashgate.Invalid, bodyBadItemID)
	}
	user, ok := g.Shopper(ctx)
	if !ok {
		return reject(ctx, flashgate.Unauthorized)
	}
	now := requestTime(ctx)
	if gd := g.guard; gd.bans != nil && (gd.bans.UserBanned(user, now) || gd.bans.IPBanned(g.clientIP(ctx), now)) {
		return rejectWith(ctx, flashgate.Forbidden, bodyBanned)
	}
	it, err := g.store.Items().Get(g.ioContext(), id, now)
	if err != nil {
		g.warn("read item state", "item", id, "err", err)
		return reject(ctx, flashgate.Unavailable)
	}
	switch {
	case it.Missing:
		return reject(ctx, flashgate.NotFound)
	case !now.Before(it.EndAt):
		return reject(ctx, flashgate.Ended)
	case now.Before(it.StartAt.Add(-pathLead)):
		return reject(ctx, flashgate.NotStarted)
	}
	if it.RequireCaptcha {
		if code, ok := g.admitCaptcha(ctx); !ok {
			return code
		}
	}
	b := make([]byte, 0, 32+edge.PathTokenLen)
	b = append(b, `{"code":"ok","path":"`...)
	b = append(b, g.guard.paths.Issue(user, id, it.EndAt)...)
	b = append(b, `"}`...)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetStatusCode(200)
	ctx.SetBody(b)
	return flashgate.OK
}

// requestError answers a request that fasthttp could not read, in the
// contract's JSON shape. Nothing of the request is echoed: it may carry a
// token.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	status, msg := 400, "malformed HTTP request"
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &small):
		status, msg = 431, "request headers too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, msg = 413, "request body too large"
	case errors.As(err, &nerr) && nerr.Timeout():
		status, msg = 408, "request not received in time"
	}
	writeJSON(ctx, status, map[string]string{"code": string(flashgate.Invalid), "message": msg})
}

// secretInLog matches what follows "Bearer ", "token=" and "path=": fasthttp
// quotes the start of a request it could not parse in its errors, and that
// may hold a shopper's token.
var secretInLog = regexp.MustCompile(`(?i)(bearer\s+|token=|path=)[A-Za-z0-9._~+/=%-]+`)

// redactSecrets hides the tokens in a log line.
func redactSecrets(s string) string {
	return secretInLog.ReplaceAllString(s, "${1}[redacted]")
}
