package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate/gateway"
)

// fuzzPeer is the TCP peer of fuzzed requests: a trusted proxy, so that
// X-Forwarded-For is parsed too.
var fuzzPeer = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000}

// FuzzBuyRequest sends buys built from the fuzzed item id, path token,
// Authorization header and X-Forwarded-For header through fasthttp's request
// parser and the gateway's real handler: whatever arrives, the answer is one
// of the buy's contract answers in JSON, never a 500 and never a panic. The
// seeds (testdata/fuzz/FuzzBuyRequest) hold valid tokens for the harness's
// items, so the fuzzer starts from requests that reach every check.
//
//	go test -run '^$' -fuzz '^FuzzBuyRequest$' -fuzztime 30s ./gateway
func FuzzBuyRequest(f *testing.F) {
	h := newHarness(f)
	// Limits off, so that they do not hide the checks behind them.
	g := h.gateway(gateway.Config{TrustedProxies: []string{"10.0.0.0/8"}, MaxInflight: 8})
	allowed := map[int]bool{202: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 410: true, 429: true, 503: true}
	f.Fuzz(func(t *testing.T, id, path, authorization, xff string) {
		raw := "POST /api/v1/seckill/" + id + "?path=" + path + " HTTP/1.1\r\nHost: gw\r\n" +
			"Authorization: " + authorization + "\r\nX-Forwarded-For: " + xff + "\r\n\r\n"
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader([]byte(raw)))); err != nil {
			return // fasthttp answers it itself, through the gateway's ErrorHandler
		}
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, fuzzPeer, nil)
		g.Server().Handler(ctx)
		status := ctx.Response.StatusCode()
		var body struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil || body.Code == "" {
			t.Fatalf("%q: %d, body %q is not a JSON answer", raw, status, ctx.Response.Body())
		}
		if !allowed[status] || body.Code == "internal" {
			t.Fatalf("%q: %d %s", raw, status, ctx.Response.Body())
		}
		if status == 202 || status == 409 {
			// Through the edge: it must have been a shopper allowed to buy.
			checkAdmitted(t, h, ctx)
		}
	})
}

// checkAdmitted fails unless the request in ctx, which reached the
// reservation, carries a valid token of a shopper who is not banned, for an
// open item, with the shopper's own path token where the item needs one (the
// path item, and the captcha item, whose captcha guards the path).
func checkAdmitted(t *testing.T, h *harness, ctx *fasthttp.RequestCtx) {
	t.Helper()
	authz := ctx.Request.Header.Peek("Authorization")
	if len(authz) < 7 || !strings.EqualFold(string(authz[:7]), "bearer ") {
		t.Fatalf("admitted without a bearer token: %q", authz)
	}
	now := time.Now()
	user, err := h.signer.Verify(authz[7:], now)
	if err != nil || user == bannedUser {
		t.Fatalf("admitted user %d, token error %v", user, err)
	}
	item, err := strconv.ParseInt(strings.TrimPrefix(string(ctx.Request.URI().Path()), "/api/v1/seckill/"), 10, 64)
	switch {
	case err != nil || (item != itemOpen && item != itemPath && item != itemCaptcha):
		t.Fatalf("admitted to %q", ctx.Request.URI().Path())
	case item != itemOpen && !h.paths.Verify(ctx.QueryArgs().Peek("path"), user, item, now):
		t.Fatalf("admitted to item %d without user %d's path token", item, user)
	}
}
