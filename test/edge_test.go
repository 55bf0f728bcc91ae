package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashgate/flashgate/internal/config"
	"github.com/flashgate/flashgate/internal/edge"
	"github.com/flashgate/flashgate/internal/testenv"
)

// Tests of the edge protection (contract §9, docs/edge.md), over HTTP.

// otherPeer is a second loopback address: requests sent from it reach the
// gateway from another client IP.
const otherPeer = "127.0.0.2"

// from returns an HTTP client whose connections leave from local address ip.
func from(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// startEdge is start, closing the client's idle connections before the
// stack shuts down: a connection the client dialed but never used counts as
// busy on the server for its first 5 seconds, and would hold up the
// shutdown that long.
func startEdge(t *testing.T, mutate func(*config.Config)) *stack {
	t.Helper()
	s := start(t, mutate)
	t.Cleanup(s.http.CloseIdleConnections)
	return s
}

// edgeBuy is a buy with the extras the edge looks at: a client, a query and
// an X-Forwarded-For header (each optional).
func (s *stack) edgeBuy(c *http.Client, item int64, token, query, xff string) answer {
	s.t.Helper()
	url := fmt.Sprintf("%s/api/v1/seckill/%d", s.gw, item)
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequest("POST", url, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if c == nil {
		c = s.http
	}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("buy: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		s.t.Fatalf("buy: bad JSON %q", raw)
	}
	return a
}

// checkRateLimited fails unless a is a 429 with a whole number of seconds,
// at least one, in Retry-After.
func checkRateLimited(t *testing.T, what string, a answer) {
	t.Helper()
	if a.Status != 429 || a.code() != "rate_limited" {
		t.Fatalf("%s: %d %s, want 429 rate_limited", what, a.Status, a.Raw)
	}
	if n, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("%s: Retry-After %q", what, a.Header.Get("Retry-After"))
	}
}

func rates(user, ip string) func(*config.Config) {
	return func(c *config.Config) {
		c.UserRate, _ = strconv.ParseFloat(user, 64)
		c.IPRate, _ = strconv.ParseFloat(ip, 64)
	}
}

func TestUserRateLimit(t *testing.T) {
	s := startEdge(t, rates("3", "0"))
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	tok := s.token(1)
	// A burst of 3 goes through (one order, then duplicates); the rest of
	// a quick burst is limited, and says when to come back.
	var limited int
	for i := 0; i < 10; i++ {
		a := s.buy(item, tok)
		switch {
		case i == 0 && a.Status != 202, i > 0 && i < 3 && a.code() != "duplicate":
			t.Fatalf("buy %d within the burst: %d %s", i, a.Status, a.Raw)
		case a.Status == 429:
			checkRateLimited(t, "over the burst", a)
			limited++
		}
	}
	if limited < 5 {
		t.Fatalf("only %d of 7 buys over the burst were limited", limited)
	}
	// Everyone else buys as usual.
	for u := int64(2); u < 8; u++ {
		if a := s.buy(item, s.token(u)); a.Status != 202 {
			t.Fatalf("user %d, while user 1 is limited: %d %s", u, a.Status, a.Raw)
		}
	}
}

func TestIPRateLimit(t *testing.T) {
	s := startEdge(t, rates("0", "4"))
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	var limited int
	for u := int64(1); u <= 10; u++ {
		a := s.buy(item, s.token(u))
		switch {
		case u <= 4 && a.Status != 202:
			t.Fatalf("buy %d within the address's burst: %d %s", u, a.Status, a.Raw)
		case a.Status == 429:
			checkRateLimited(t, "over the address's burst", a)
			limited++
		}
	}
	if limited < 4 {
		t.Fatalf("only %d of 6 buys over the burst were limited", limited)
	}
	// The address is limited before its token is even read: a flood of
	// bad tokens costs no signature check.
	checkRateLimited(t, "bad token from a limited address", s.buy(item, "garbage"))
	// Another address has its own bucket.
	if a := s.edgeBuy(from(t, otherPeer), item, s.token(50), "", ""); a.Status != 202 {
		t.Fatalf("from %s: %d %s", otherPeer, a.Status, a.Raw)
	}
}

func TestZeroRatesTurnLimitsOff(t *testing.T) {
	s := startEdge(t, rates("0", "0"))
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	tok := s.token(1)
	for i := 0; i < 40; i++ {
		if a := s.buy(item, tok); a.Status == 429 {
			t.Fatalf("buy %d with both rates 0: %s", i, a.Raw)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	s := startEdge(t, func(c *config.Config) {
		rates("0", "2")(c)
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	user := int64(0)
	buy := func(c *http.Client, xff string) answer {
		user++
		return s.edgeBuy(c, item, s.token(user), "", xff)
	}
	// Behind the trusted proxy, each client named in X-Forwarded-For has
	// its own bucket.
	for i := 0; i < 2; i++ {
		if a := buy(nil, "198.51.100.1"); a.Status != 202 {
			t.Fatalf("client 1 via the proxy, buy %d: %d %s", i, a.Status, a.Raw)
		}
	}
	checkRateLimited(t, "client 1 via the proxy over its burst", buy(nil, "198.51.100.1"))
	// The proxy's own hop and any spoofed entries left of it are not the key.
	if a := buy(nil, "10.9.9.9, 198.51.100.2"); a.Status != 202 {
		t.Fatalf("client 2 via the proxy: %d %s", a.Status, a.Raw)
	}
	// From an untrusted peer the header is ignored: the peer is the key.
	other := from(t, otherPeer)
	for i, xff := range []string{"198.51.100.3", "198.51.100.4"} {
		if a := buy(other, xff); a.Status != 202 {
			t.Fatalf("untrusted peer, buy %d: %d %s", i, a.Status, a.Raw)
		}
	}
	checkRateLimited(t, "untrusted peer naming a fresh client", buy(other, "198.51.100.5"))

	// An IP ban applies to the client behind the proxy.
	if a := s.adminDo("POST", "/admin/v1/blacklist", map[string]any{"ip": "198.51.100.9"}); a.Status != 200 {
		t.Fatalf("ban: %d %s", a.Status, a.Raw)
	}
	testenv.Eventually(t, time.Second, func() error {
		if a := buy(nil, "198.51.100.9"); a.Status != 403 || a.code() != "forbidden" {
			return fmt.Errorf("banned client via the proxy: %d %s", a.Status, a.Raw)
		}
		return nil
	})
}

// TestIPv6ClientsByNetwork: behind a trusted proxy, IPv6 clients named in
// X-Forwarded-For are limited and banned by their /64: hopping to another
// address of the same /64 gains nothing, the next /64 is someone else.
func TestIPv6ClientsByNetwork(t *testing.T) {
	s := startEdge(t, func(c *config.Config) {
		rates("0", "2")(c)
		c.TrustedProxies = []string{"127.0.0.1"}
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	user := int64(0)
	buy := func(xff string) answer {
		user++
		return s.edgeBuy(nil, item, s.token(user), "", xff)
	}
	for i, xff := range []string{"2001:db8:a:1::1", "[2001:db8:a:1:ffff::2]:4433"} {
		if a := buy(xff); a.Status != 202 {
			t.Fatalf("buy %d from the /64: %d %s", i, a.Status, a.Raw)
		}
	}
	checkRateLimited(t, "a third address of the same /64", buy("2001:db8:a:1:1234:5678:9abc:def0"))
	if a := buy("2001:db8:a:2::1"); a.Status != 202 {
		t.Fatalf("the next /64: %d %s", a.Status, a.Raw)
	}

	if a := s.adminDo("POST", "/admin/v1/blacklist", map[string]any{"ip": "2001:db8:b:1::7"}); a.Status != 200 {
		t.Fatalf("ban: %d %s", a.Status, a.Raw)
	}
	testenv.Eventually(t, time.Second, func() error {
		if a := buy("2001:db8:b:1::8"); a.Status != 403 || a.code() != "forbidden" {
			return fmt.Errorf("a neighbour in the banned /64: %d %s", a.Status, a.Raw)
		}
		return nil
	})
	if a := buy("2001:db8:b:2::7"); a.Status != 202 {
		t.Fatalf("outside the banned /64: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("GET", "/admin/v1/blacklist", nil); !strings.Contains(a.Raw, `"ip":"2001:db8:b:1::/64"`) {
		t.Fatalf("the ban as listed: %s", a.Raw)
	}
	if a := s.adminDo("POST", "/admin/v1/blacklist", map[string]any{"ip": "2001:db8::/48"}); a.Status != 422 || !strings.Contains(a.str("message"), "ip") {
		t.Fatalf("a ban of a /48: %d %s", a.Status, a.Raw)
	}
}

// second starts another flashgate on s's Redis prefix and database, as a
// second gateway process of the same deployment would run, and waits until
// it is ready (its ban list loaded).
func second(t *testing.T, s *stack) *stack {
	t.Helper()
	cfg := *s.app.Config
	cfg.HTTPAddr, cfg.AdminAddr, cfg.PaysimAddr, cfg.PublicURL = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", ""
	a := testenv.Start(t, &cfg)
	if a.Config.RedisPrefix != s.app.Config.RedisPrefix || a.Config.MySQLDSN != s.app.Config.MySQLDSN {
		t.Fatalf("second stack does not share Redis prefix and database")
	}
	s2 := &stack{t: t, app: a, gw: "http://" + a.HTTPAddr, admin: "http://" + a.AdminAddr, http: s.http}
	t.Cleanup(s.http.CloseIdleConnections)
	testenv.Eventually(t, 5*time.Second, func() error {
		if a := s2.do("GET", s2.gw+"/readyz", "", nil); a.Status != 200 {
			return fmt.Errorf("second gateway not ready: %d %s", a.Status, a.Raw)
		}
		return nil
	})
	return s2
}

// within polls until cond holds, failing after d; it returns how long that
// took.
func within(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, got := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v (last answer %s)", what, d, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBansReachEveryGateway(t *testing.T) {
	a := startEdge(t, nil)
	item := a.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	b := second(t, a)
	forbidden := func(s *stack, c *http.Client, user int64) func() (bool, string) {
		return func() (bool, string) {
			r := s.edgeBuy(c, item, s.token(user), "", "")
			return r.Status == 403 && r.code() == "forbidden", r.Raw
		}
	}
	allowed := func(s *stack, c *http.Client, user int64) func() (bool, string) {
		return func() (bool, string) {
			r := s.edgeBuy(c, item, s.token(user), "", "")
			return r.Status == 202 || r.Status == 409, r.Raw
		}
	}
	ban := func(body map[string]any) {
		t.Helper()
		if r := a.adminDo("POST", "/admin/v1/blacklist", body); r.Status != 200 || r.code() != "ok" {
			t.Fatalf("ban %v: %d %s", body, r.Status, r.Raw)
		}
	}
	lift := func(body map[string]any) {
		t.Helper()
		if r := a.adminDo("DELETE", "/admin/v1/blacklist", body); r.Status != 200 || r.code() != "ok" {
			t.Fatalf("lift %v: %d %s", body, r.Status, r.Raw)
		}
	}

	// A user ban, through the first gateway's admin, reaches the second
	// gateway within a second.
	ban(map[string]any{"user_id": 7, "reason": "scalper"})
	d := within(t, time.Second, "user ban on the second gateway", forbidden(b, nil, 7))
	t.Logf("user ban applied by the second gateway after %v", d)
	within(t, time.Second, "user ban on the first gateway", forbidden(a, nil, 7))
	if r := b.edgeBuy(nil, item, b.token(7), "", ""); r.Status != 403 {
		t.Fatalf("banned user: %d %s", r.Status, r.Raw)
	}
	if r := b.buy(item, b.token(8)); r.Status != 202 {
		t.Fatalf("another user: %d %s", r.Status, r.Raw)
	}
	// No path token for a banned user either.
	if r := b.do("GET", fmt.Sprintf("%s/api/v1/seckill/%d/path", b.gw, item), b.token(7), nil); r.Status != 403 {
		t.Fatalf("path for a banned user: %d %s", r.Status, r.Raw)
	}

	// An IP ban: the other loopback address is refused, whoever it sends.
	other := from(t, otherPeer)
	ban(map[string]any{"ip": otherPeer})
	within(t, time.Second, "IP ban on the second gateway", forbidden(b, other, 9))
	if r := b.buy(item, b.token(10)); r.Status != 202 {
		t.Fatalf("from an address not banned: %d %s", r.Status, r.Raw)
	}

	// A ban with a TTL ends by itself.
	ban(map[string]any{"user_id": 11, "ttl": "1500ms"})
	within(t, time.Second, "ban with a TTL", forbidden(b, nil, 11))

	list := a.adminDo("GET", "/admin/v1/blacklist", nil)
	if list.Status != 200 {
		t.Fatalf("list: %d %s", list.Status, list.Raw)
	}
	bans := list.Body["bans"].([]any)
	if len(bans) != 3 {
		t.Fatalf("list: %s", list.Raw)
	}
	u7, u11, ip := bans[0].(map[string]any), bans[1].(map[string]any), bans[2].(map[string]any)
	if u7["user_id"] != 7.0 || u7["expires_at"] != nil || u7["reason"] != "scalper" {
		t.Fatalf("user 7 listed as %v", u7)
	}
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(u11["expires_at"])); u11["user_id"] != 11.0 || err != nil || time.Until(exp) > 2*time.Second {
		t.Fatalf("user 11 listed as %v", u11)
	}
	if ip["ip"] != otherPeer || ip["reason"] != "admin" {
		t.Fatalf("IP listed as %v", ip)
	}

	// Lifting takes effect everywhere within a second.
	lift(map[string]any{"user_id": 7})
	lift(map[string]any{"ip": otherPeer})
	within(t, time.Second, "user ban lifted on the second gateway", allowed(b, nil, 7))
	within(t, time.Second, "IP ban lifted on the second gateway", allowed(b, other, 12))
	within(t, 3*time.Second, "ban with a TTL expired", allowed(b, nil, 11))
	if r := a.adminDo("GET", "/admin/v1/blacklist", nil); len(r.Body["bans"].([]any)) != 0 {
		t.Fatalf("list after lifting and expiry: %s", r.Raw)
	}
}

func TestBlacklistAdminAnswers(t *testing.T) {
	s := startEdge(t, nil)
	cases := []struct {
		body   string
		status int
		field  string
	}{
		{``, 400, "body"},
		{`[]`, 400, "body"},
		{`{}`, 422, "user_id, ip"},
		{`{"user_id":5,"ip":"1.2.3.4"}`, 422, "user_id, ip"},
		{`{"user_id":"5"}`, 400, "user_id"},
		{`{"user_id":0}`, 422, "user_id"},
		{`{"user_id":-3}`, 422, "user_id"},
		{`{"ip":"1.2.3"}`, 422, "ip"},
		{`{"ip":7}`, 400, "ip"},
		{`{"user_id":5,"ttl":"soon"}`, 422, "ttl"},
		{`{"user_id":5,"ttl":"-1m"}`, 422, "ttl"},
		{`{"user_id":5,"ttl":60}`, 400, "ttl"},
	}
	for _, method := range []string{"POST", "DELETE"} {
		for _, c := range cases {
			a := s.do(method, s.admin+"/admin/v1/blacklist", s.app.Config.AdminToken, c.body)
			if a.Status != c.status || a.code() != "invalid" || !strings.HasPrefix(a.str("message"), c.field) {
				t.Errorf("%s %s: %d %s, want %d naming %s", method, c.body, a.Status, a.Raw, c.status, c.field)
			}
		}
	}
	if a := s.do("POST", s.admin+"/admin/v1/blacklist", "", `{"user_id":5}`); a.Status != 401 {
		t.Fatalf("without the admin token: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("DELETE", "/admin/v1/blacklist", map[string]any{"user_id": 5}); a.Status != 200 {
		t.Fatalf("lifting a ban that does not exist: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("POST", "/admin/v1/blacklist", map[string]any{"ip": "::ffff:192.0.2.1", "ttl": "10m"}); a.Status != 200 {
		t.Fatalf("ban an IPv4-mapped address: %d %s", a.Status, a.Raw)
	}
	if a := s.adminDo("GET", "/admin/v1/blacklist", nil); !strings.Contains(a.Raw, `"ip":"192.0.2.1"`) {
		t.Fatalf("list: %s", a.Raw)
	}
}

func TestAutoBan(t *testing.T) {
	s := startEdge(t, func(c *config.Config) {
		rates("1", "0")(c)
		c.AutobanAfter, c.AutobanWindow, c.AutobanFor = 3, 10*time.Second, time.Minute
	})
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 100})
	tok := s.token(21)
	within(t, 2*time.Second, "auto-ban after repeated 429s", func() (bool, string) {
		a := s.buy(item, tok)
		return a.Status == 403, a.Raw
	})
	list := s.adminDo("GET", "/admin/v1/blacklist", nil)
	if bans := list.Body["bans"].([]any); len(bans) != 1 || !strings.HasPrefix(fmt.Sprint(bans[0].(map[string]any)["reason"]), "auto:") {
		t.Fatalf("list: %s", list.Raw)
	}
	if a := s.buy(item, s.token(22)); a.Status != 202 {
		t.Fatalf("another user: %d %s", a.Status, a.Raw)
	}
	s.adminDo("DELETE", "/admin/v1/blacklist", map[string]any{"user_id": 21})
	within(t, 2*time.Second, "auto-ban lifted", func() (bool, string) {
		a := s.buy(item, tok)
		return a.Status != 403, a.Raw
	})
}

func TestPathTokens(t *testing.T) {
	s := startEdge(t, nil)
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "require_path": true})
	another := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10, "require_path": true})
	plain := s.sale(-time.Second, time.Hour, map[string]any{"stock": 10})
	soon := s.sale(5*time.Second, time.Hour, map[string]any{"stock": 10, "require_path": true})
	later := s.sale(time.Hour, 2*time.Hour, map[string]any{"stock": 10, "require_path": true})
	ending := s.sale(-time.Second, time.Second, map[string]any{"stock": 10, "require_path": true})

	path := func(item, user int64) answer {
		t.Helper()
		return s.do("GET", fmt.Sprintf("%s/api/v1/seckill/%d/path", s.gw, item), s.token(user), nil)
	}
	token := func(item, user int64) string {
		t.Helper()
		a := path(item, user)
		if a.Status != 200 || a.code() != "ok" || len(a.str("path")) != edge.PathTokenLen {
			t.Fatalf("path of user %d for item %d: %d %s", user, item, a.Status, a.Raw)
		}
		return a.str("path")
	}
	forbidden := func(what string, user int64, query string) {
		t.Helper()
		if a := s.edgeBuy(nil, item, s.token(user), query, ""); a.Status != 403 || a.code() != "forbidden" {
			t.Fatalf("%s: %d %s", what, a.Status, a.Raw)
		}
	}

	mine := token(item, 1)
	forbidden("no path", 1, "")
	forbidden("empty path", 1, "path=")
	tampered := []byte(mine)
	tampered[len(tampered)-1] ^= 1
	forbidden("tampered path", 1, "path="+string(tampered))
	forbidden("another user's path", 2, "path="+mine)
	forbidden("another item's path", 1, "path="+token(another, 1))
	expired := edge.NewPathSigner([]byte(s.app.Config.AuthSecret)).Issue(1, item, time.Now().Add(-time.Second))
	forbidden("expired path", 1, "path="+expired)
	if a := s.edgeBuy(nil, item, s.token(1), "path="+mine, ""); a.Status != 202 {
		t.Fatalf("own path: %d %s", a.Status, a.Raw)
	}
	// Items without require_path do not need one.
	if a := s.buy(plain, s.token(1)); a.Status != 202 {
		t.Fatalf("item without require_path: %d %s", a.Status, a.Raw)
	}

	// Handed out from 10s before the sale opens until it ends, to shoppers.
	if a := s.do("GET", fmt.Sprintf("%s/api/v1/seckill/%d/path", s.gw, item), "", nil); a.Status != 401 {
		t.Fatalf("path without a token: %d %s", a.Status, a.Raw)
	}
	early := token(soon, 3)
	if a := s.edgeBuy(nil, soon, s.token(3), "path="+early, ""); a.Status != 403 || a.code() != "not_started" {
		t.Fatalf("buy with a path before the sale opens: %d %s", a.Status, a.Raw)
	}
	if a := path(later, 3); a.Status != 403 || a.code() != "not_started" {
		t.Fatalf("path an hour early: %d %s", a.Status, a.Raw)
	}
	if a := path(999999, 3); a.Status != 404 || a.code() != "not_found" {
		t.Fatalf("path of an unknown item: %d %s", a.Status, a.Raw)
	}
	testenv.Eventually(t, 3*time.Second, func() error {
		if a := path(ending, 3); a.Status != 403 || a.code() != "ended" {
			return fmt.Errorf("path after the sale: %d %s", a.Status, a.Raw)
		}
		return nil
	})
}

// TestInvariantsWithProtections runs a storm with every protection on: the
// limits, a ban, require_path and a small in-flight cap. Whatever the edge
// turns away, what it lets through keeps the invariants of §7.
func TestInvariantsWithProtections(t *testing.T) {
	s := startEdge(t, func(c *config.Config) {
		rates("2", "2000")(c)
		c.MaxInflight = 4
		c.AutobanAfter = 0
	})
	const stock, nusers, tries = 30, 300, 3
	item := s.sale(-time.Second, time.Hour, map[string]any{"stock": stock, "shards": 4, "require_path": true})
	const banned = int64(1000)
	if a := s.adminDo("POST", "/admin/v1/blacklist", map[string]any{"user_id": banned}); a.Status != 200 {
		t.Fatalf("ban: %s", a.Raw)
	}
	users := make([]int64, nusers)
	paths := map[int64]string{}
	signer := edge.NewPathSigner([]byte(s.app.Config.AuthSecret))
	for i := range users {
		users[i] = banned + int64(i)
		// Every third user has no path token.
		if i%3 != 0 {
			paths[users[i]] = signer.Issue(users[i], item, time.Now().Add(time.Hour))
		}
	}
	within(t, time.Second, "ban applied", func() (bool, string) {
		a := s.buy(item, s.token(banned))
		return strings.Contains(a.str("message"), "banned"), a.Raw
	})
	out := stormWith(s, item, users, paths, tries, 32)

	accepted := map[int64]string{}
	counts := map[string]int{}
	for _, o := range out {
		counts[o.code]++
		switch o.code {
		case "ok":
			if _, dup := accepted[o.user]; dup {
				t.Fatalf("user %d accepted twice", o.user)
			}
			if o.user == banned || paths[o.user] == "" {
				t.Fatalf("accepted user %d: banned or without a path", o.user)
			}
			accepted[o.user] = o.order
		case "duplicate", "sold_out", "rate_limited", "unavailable", "forbidden":
		default:
			t.Fatalf("unexpected answer %+v", o)
		}
	}
	t.Logf("answers: %v", counts)
	if len(accepted) == 0 || len(accepted) > stock {
		t.Fatalf("accepted %d of stock %d", len(accepted), stock)
	}
	st := s.settle(item) // invariant 1
	if st.Unpaid != int64(len(accepted)) || st.Remaining != stock-int64(len(accepted)) {
		t.Fatalf("stats %+v after %d accepted", st, len(accepted))
	}
	got := rows(t, s, item)
	for user, order := range accepted { // invariant 3
		if got[order] != user {
			t.Fatalf("accepted order %s of user %d: row has user %d", order, user, got[order])
		}
	}
	if len(got) != len(accepted) { // with invariant 1, also invariant 2
		t.Fatalf("%d rows for %d accepted buys", len(got), len(accepted))
	}
}

// stormWith is storm with a path token per user (none where paths has
// none).
func stormWith(s *stack, item int64, users []int64, paths map[int64]string, tries, workers int) []outcome {
	jobs := make(chan int64)
	results := make(chan outcome)
	tokens := map[int64]string{}
	for _, u := range users {
		tokens[u] = s.token(u)
	}
	for w := 0; w < workers; w++ {
		go func() {
			for u := range jobs {
				q := ""
				if p := paths[u]; p != "" {
					q = "path=" + p
				}
				a := s.edgeBuy(nil, item, tokens[u], q, "")
				results <- outcome{u, a.Status, a.code(), a.str("order_id")}
			}
		}()
	}
	go func() {
		for try := 0; try < tries; try++ {
			for _, u := range users {
				jobs <- u
			}
		}
		close(jobs)
	}()
	out := make([]outcome, 0, tries*len(users))
	for range tries * len(users) {
		out = append(out, <-results)
	}
	return out
}
