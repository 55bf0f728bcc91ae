package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/gateway"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/edge"
	"github.com/flashgate/flashgate/internal/kafka"
	"github.com/flashgate/flashgate/internal/redis"
	"github.com/flashgate/flashgate/internal/testenv"
)

// testSecret signs the shopper and path tokens of these tests, and of the
// fuzz seeds in testdata.
const testSecret = "gateway-test-secret-0123456789abcdef"

// The items a harness publishes. Their windows are fixed, not relative to
// now, so that the path tokens in the fuzz seeds stay valid.
const (
	itemOpen int64 = 101 + iota
	itemPath
	itemUpcoming
	itemEnded
	itemSoldOut
	itemCaptcha
	itemMissing int64 = 999
)

var (
	longAgo  = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	farAway  = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	yearAgo  = time.Now().AddDate(-1, 0, 0)
	nextYear = time.Now().AddDate(1, 0, 0)
)

// Bans every harness holds.
const (
	bannedUser = int64(666)
	bannedIP   = "192.0.2.66"
)

// harness is what a gateway needs on the machine's real Redis, under a
// fresh prefix, with the items above published and the bans above stored,
// and an embedded broker for what gets through.
type harness struct {
	tb       testing.TB
	store    *redis.Store
	producer *kafka.Producer
	signer   *auth.Signer
	paths    *edge.PathSigner
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	ctx := context.Background()
	prefix := testenv.Prefix
	if _, fuzz := tb.(*testing.F); fuzz {
		prefix = testenv.SharedPrefix
	}
	store, err := redis.Open(ctx, redis.Options{Addrs: []string{testenv.RedisAddr()}, Prefix: prefix(tb)})
	if err != nil {
		tb.Fatalf("redis: %v", err)
	}
	tb.Cleanup(store.Close)
	broker, err := kafka.StartBroker("reservations", 1)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(broker.Close)
	producer := kafka.NewProducer(kafka.ProducerOptions{Brokers: broker.Addrs(), Topic: "reservations"})
	tb.Cleanup(func() { producer.Close() })

	items := []flashgate.Item{
		{ID: itemOpen, StartAt: longAgo, EndAt: farAway},
		{ID: itemPath, StartAt: longAgo, EndAt: farAway, RequirePath: true},
		{ID: itemUpcoming, StartAt: nextYear, EndAt: farAway},
		{ID: itemEnded, StartAt: longAgo, EndAt: yearAgo},
		{ID: itemSoldOut, StartAt: longAgo, EndAt: farAway},
		{ID: itemCaptcha, StartAt: longAgo, EndAt: farAway, RequireCaptcha: true},
	}
	for _, it := range items {
		it.ActivityID, it.Name, it.Price, it.Stock, it.Shards = 1, "item", 990, 1_000_000, 1
		if _, err := store.Preload(ctx, it.ID, 0, it.Stock); err != nil {
			tb.Fatal(err)
		}
		if err := store.PutItem(ctx, &it); err != nil {
			tb.Fatal(err)
		}
	}
	if err := store.SetSoldOut(ctx, itemSoldOut, true); err != nil {
		tb.Fatal(err)
	}
	bans := edge.NewBanStore(store.Client(), store.Prefix())
	for _, b := range []edge.Ban{{UserID: bannedUser}, {IP: bannedIP}} {
		if err := bans.Ban(ctx, b); err != nil {
			tb.Fatal(err)
		}
	}
	// The harness's tokens last until 2100 (the fuzz seeds hold some):
	// no maximum lifetime here.
	signer := auth.NewSigner([]byte(testSecret))
	signer.SetMaxLifetime(0)
	return &harness{tb: tb, store: store, producer: producer,
		signer: signer, paths: edge.NewPathSigner([]byte(testSecret))}
}

// gateway starts a gateway with cfg on the harness and waits until it is
// ready (its ban list loaded). It serves on a loopback listener, so that its
// background work runs, but the tests call its handler directly.
func (h *harness) gateway(cfg gateway.Config) *gateway.Gateway {
	h.tb.Helper()
	g, _ := h.start(cfg, nil)
	return g
}

// start is gateway, with tune applied to the fasthttp server before it
// serves; it also returns the address it listens on.
func (h *harness) start(cfg gateway.Config, tune func(*fasthttp.Server)) (*gateway.Gateway, string) {
	h.tb.Helper()
	cfg.PathSecret = []byte(testSecret)
	g := gateway.New(cfg, h.store, nil, h.producer, h.signer, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if tune != nil {
		tune(g.Server())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, ln) }()
	h.tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.tb.Errorf("serve: %v", err)
		}
	})
	ready := request("GET", "/readyz", "", clientAddr)
	testenv.Eventually(h.tb, 5*time.Second, func() error {
		serve(g, ready)
		if c := ready.Response.StatusCode(); c != 200 {
			return fmt.Errorf("readyz: %d %s", c, ready.Response.Body())
		}
		return nil
	})
	return g, ln.Addr().String()
}

// token is a shopper token of user, valid until 2100.
func (h *harness) token(user int64) string {
	return h.signer.Mint(user, farAway)
}

// clientAddr is the peer of requests built by request unless told otherwise.
var clientAddr = netip.MustParseAddr("10.1.2.3")

// request builds a request context the way fasthttp hands one to a handler.
// headers are name, value pairs.
func request(method, uri, token string, remote netip.Addr, headers ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: remote.AsSlice(), Port: 40000}, nil)
	return ctx
}

// serve runs g's handler on ctx, after clearing the previous response.
func serve(g *gateway.Gateway, ctx *fasthttp.RequestCtx) {
	ctx.Response.Reset()
	g.Server().Handler(ctx)
}

func buyURI(item int64) string { return fmt.Sprintf("/api/v1/seckill/%d", item) }

// rejectCase is one way the gateway turns a buy away without I/O.
type rejectCase struct {
	name   string
	g      *gateway.Gateway
	ctx    *fasthttp.RequestCtx
	status int
	code   flashgate.Code
}

// rejectCases builds every reject path of the buy on one harness, each
// warmed up once: buckets exist, caches are filled, and the rate-limited
// cases have spent their one token.
func rejectCases(tb testing.TB) []rejectCase {
	tb.Helper()
	h := newHarness(tb)
	// Limits on, but too high to trip, so that their cost is measured.
	open := h.gateway(gateway.Config{UserRate: 1e9, IPRate: 1e9, MaxInflight: 64})
	userTight := h.gateway(gateway.Config{UserRate: 1})
	ipTight := h.gateway(gateway.Config{IPRate: 1})
	// The limits off, as in the load tests of docs/performance.md.
	unlimited := h.gateway(gateway.Config{})
	other := netip.MustParseAddr("10.9.9.9")
	// One token in 1000s per address: the item read takes it, and every
	// other public endpoint of the address is then turned away.
	publicTight := h.gateway(gateway.Config{PublicIPRate: 0.001})
	reader := netip.MustParseAddr("10.7.7.7")
	cases := []rejectCase{
		{"item_read_rate_limited", publicTight, request("GET", "/api/v1/items/101", "", reader), 429, flashgate.RateLimited},
		{"activities_rate_limited", publicTight, request("GET", "/api/v1/activities", "", reader), 429, flashgate.RateLimited},
		{"bad_item_id", open, request("POST", "/api/v1/seckill/x1", h.token(1), clientAddr), 400, flashgate.Invalid},
		{"unauthorized", open, request("POST", buyURI(itemOpen), "", clientAddr), 401, flashgate.Unauthorized},
		{"bad_token", open, request("POST", buyURI(itemOpen), h.token(1)+"x", clientAddr), 401, flashgate.Unauthorized},
		{"ip_banned", open, request("POST", buyURI(itemOpen), h.token(1), netip.MustParseAddr(bannedIP)), 403, flashgate.Forbidden},
		{"user_banned", open, request("POST", buyURI(itemOpen), h.token(bannedUser), clientAddr), 403, flashgate.Forbidden},
		{"ip_rate_limited", ipTight, request("POST", buyURI(itemMissing), h.token(1), other), 429, flashgate.RateLimited},
		{"user_rate_limited", userTight, request("POST", buyURI(itemMissing), h.token(2), other), 429, flashgate.RateLimited},
		{"not_found", open, request("POST", buyURI(itemMissing), h.token(1), clientAddr), 404, flashgate.NotFound},
		{"not_started", open, request("POST", buyURI(itemUpcoming), h.token(1), clientAddr), 403, flashgate.NotStarted},
		{"ended", open, request("POST", buyURI(itemEnded), h.token(1), clientAddr), 403, flashgate.Ended},
		{"sold_out", open, request("POST", buyURI(itemSoldOut), h.token(1), clientAddr), 410, flashgate.SoldOut},
		{"sold_out_limits_off", unlimited, request("POST", buyURI(itemSoldOut), h.token(1), clientAddr), 410, flashgate.SoldOut},
		{"path_missing", open, request("POST", buyURI(itemPath), h.token(1), clientAddr), 403, flashgate.Forbidden},
		{"path_of_another_user", open, request("POST", buyURI(itemPath)+"?path="+h.paths.Issue(2, itemPath, farAway), h.token(1), clientAddr), 403, flashgate.Forbidden},
	}
	for _, c := range cases {
		serve(c.g, c.ctx)
		serve(c.g, c.ctx)
		if got := c.ctx.Response.StatusCode(); got != c.status || answerCode(c.ctx) != c.code {
			tb.Fatalf("%s: %d %s, want %d %s", c.name, got, c.ctx.Response.Body(), c.status, c.code)
		}
	}
	return cases
}

// publicCases are the reject cases of the public limit, whose bucket
// refills in 1000s.
var publicCases = map[string]bool{"item_read_rate_limited": true, "activities_rate_limited": true,
	"pay_rate_limited": true, "notify_rate_limited": true, "return_rate_limited": true}

func answerCode(ctx *fasthttp.RequestCtx) flashgate.Code {
	var body struct {
		Code flashgate.Code `json:"code"`
	}
	json.Unmarshal(ctx.Response.Body(), &body)
	return body.Code
}

// TestBuyRejectsDoNotAllocate holds the reject paths to zero allocations
// (the benchmarks below show the same with timings).
func TestBuyRejectsDoNotAllocate(t *testing.T) {
	for _, c := range rejectCases(t) {
		allocs := testing.AllocsPerRun(200, func() { serve(c.g, c.ctx) })
		if got := c.ctx.Response.StatusCode(); got != c.status {
			t.Errorf("%s: answered %d, want %d", c.name, got, c.status)
		}
		// The harness's three gateways share one prefix, so one fleet: each
		// enforces a third of the rate of 1, and a token comes back within
		// three seconds. The public limit is per gateway, at 0.001/s.
		ra := string(c.ctx.Response.Header.Peek("Retry-After"))
		if publicCases[c.name] {
			if ra != "1000" {
				t.Errorf("%s: Retry-After %q", c.name, ra)
			}
		} else if c.status == 429 && (ra < "1" || ra > "3" || len(ra) != 1) {
			t.Errorf("%s: Retry-After %q", c.name, ra)
		}
		if allocs > 0 && !raceEnabled {
			t.Errorf("%s: %v allocations per request", c.name, allocs)
		}
	}
}

// BenchmarkBuyReject measures each reject path of the buy through the real
// handler, with a request context built in-process (no network, no HTTP
// parsing): go test -run '^$' -bench BuyReject -benchmem ./gateway
func BenchmarkBuyReject(b *testing.B) {
	for _, c := range rejectCases(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serve(c.g, c.ctx)
			}
			if got := c.ctx.Response.StatusCode(); got != c.status {
				b.Fatalf("answered %d, want %d", got, c.status)
			}
		})
	}
}

func TestBuyPathEndpoint(t *testing.T) {
	h := newHarness(t)
	g := h.gateway(gateway.Config{})
	get := func(item, user int64, remote netip.Addr) *fasthttp.RequestCtx {
		ctx := request("GET", buyURI(item)+"/path", h.token(user), remote)
		serve(g, ctx)
		return ctx
	}
	ctx := get(itemPath, 7, clientAddr)
	var body struct{ Code, Path string }
	if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil || ctx.Response.StatusCode() != 200 || body.Code != "ok" {
		t.Fatalf("path: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if !h.paths.Verify([]byte(body.Path), 7, itemPath, time.Now()) {
		t.Fatalf("path %q does not verify", body.Path)
	}
	buy := request("POST", buyURI(itemPath)+"?path="+body.Path, h.token(7), clientAddr)
	serve(g, buy)
	if buy.Response.StatusCode() != 202 {
		t.Fatalf("buy with the path: %d %s", buy.Response.StatusCode(), buy.Response.Body())
	}
	for _, c := range []struct {
		name   string
		ctx    *fasthttp.RequestCtx
		status int
		code   flashgate.Code
	}{
		{"upcoming", get(itemUpcoming, 7, clientAddr), 403, flashgate.NotStarted},
		{"ended", get(itemEnded, 7, clientAddr), 403, flashgate.Ended},
		{"unknown", get(itemMissing, 7, clientAddr), 404, flashgate.NotFound},
		{"banned user", get(itemPath, bannedUser, clientAddr), 403, flashgate.Forbidden},
		{"banned IP", get(itemPath, 7, netip.MustParseAddr(bannedIP)), 403, flashgate.Forbidden},
		{"no token", func() *fasthttp.RequestCtx {
			ctx := request("GET", buyURI(itemPath)+"/path", "", clientAddr)
			serve(g, ctx)
			return ctx
		}(), 401, flashgate.Unauthorized},
	} {
		if c.ctx.Response.StatusCode() != c.status || answerCode(c.ctx) != c.code {
			t.Errorf("%s: %d %s", c.name, c.ctx.Response.StatusCode(), c.ctx.Response.Body())
		}
	}
}

func TestBadTrustedProxyStopsServe(t *testing.T) {
	g := gateway.New(gateway.Config{TrustedProxies: []string{"10.0.0.0/33"}}, nil, nil, nil, auth.NewSigner([]byte(testSecret)),
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = g.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "FLASHGATE_TRUSTED_PROXIES") {
		t.Fatalf("Serve: %v", err)
	}
}

// TestServeStopsWhenCancelledAtOnce: a gateway told to stop before its
// server has even registered the listener still returns (it used to accept
// for ever: fasthttp's shutdown closes only the listeners it knows).
func TestServeStopsWhenCancelledAtOnce(t *testing.T) {
	for range 20 {
		g := gateway.New(gateway.Config{}, nil, nil, nil, auth.NewSigner([]byte(testSecret)),
			slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- g.Serve(ctx, ln) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context was cancelled")
		}
	}
}
