package gateway

import (
	"embed"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/captcha"
	"github.com/flashgate/flashgate/internal/webasset"
)

// The storefront (contract §12): hand-written HTML, CSS and JavaScript in
// web/, embedded, served from memory with ETags. The pages are clients of
// the public JSON API like any script; nothing here renders data.
//
//go:embed web
var webFS embed.FS

func loadWeb() *webasset.Set { return webasset.MustSub(webFS, "web") }

// pageRoute serves the embedded file name (a route of builtinRoutes).
func (g *Gateway) pageRoute(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { g.count(routePage, g.page(ctx, name)) }
}

// itemPage is GET /items/{item_id}: the item page, whatever the item (the
// page asks the API), for a well-formed id.
func (g *Gateway) itemPage(ctx *fasthttp.RequestCtx) {
	if _, ok := parseID(ctx.Path()[len("/items/"):]); !ok {
		g.count(routePage, writeError(ctx, flashgate.Errorf(flashgate.NotFound, "no such page")))
		return
	}
	g.count(routePage, g.page(ctx, "item.html"))
}

// page serves one embedded file: 304 when the client holds it, gzipped
// when the client takes it.
func (g *Gateway) page(ctx *fasthttp.RequestCtx, name string) flashgate.Code {
	f := g.web.Get(name)
	if f == nil {
		return writeError(ctx, flashgate.Errorf(flashgate.NotFound, "no such file"))
	}
	body, etag, gz := f.Pick(string(ctx.Request.Header.Peek("Accept-Encoding")))
	h := &ctx.Response.Header
	f.SetHeaders(h.Set, etag)
	if webasset.NotModified(string(ctx.Request.Header.Peek("If-None-Match")), etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return flashgate.OK
	}
	h.SetContentType(f.ContentType)
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	ctx.SetStatusCode(200)
	if !ctx.IsHead() {
		ctx.SetBody(body)
	} else {
		ctx.Response.SkipBody = true
		h.SetContentLength(len(body))
	}
	return flashgate.OK
}

// captcha is GET /api/v1/captcha (contract §12): a fresh captcha whose
// answer any gateway checks once, within two minutes. Drawing runs on a
// bounded number of goroutines; past them the answer is 429 at once.
func (g *Gateway) captcha(ctx *fasthttp.RequestCtx) flashgate.Code {
	if g.captchas == nil {
		return writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "captcha unavailable"))
	}
	id, img, err := g.captchas.New(g.ioContext())
	if errors.Is(err, captcha.ErrBusy) {
		return rateLimited(ctx, time.Second)
	}
	if err != nil {
		g.log.Warn("captcha", "err", err)
		return writeError(ctx, flashgate.Errorf(flashgate.Unavailable, "captcha unavailable"))
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	writeJSON(ctx, 200, map[string]string{"code": "ok", "captcha_id": id, "image": img})
	return flashgate.OK
}

// Pre-rendered answer of a path request without a good captcha answer.
var bodyNeedCaptcha = renderReject(flashgate.Forbidden,
	"this item needs a solved captcha: GET /api/v1/captcha, then ask for the path with ?captcha_id=ID&captcha=ANSWER (each captcha is good for one try)")

// admitCaptcha checks the captcha answer of a path request for an item that
// requires one.
func (g *Gateway) admitCaptcha(ctx *fasthttp.RequestCtx) (flashgate.Code, bool) {
	args := ctx.QueryArgs()
	if g.captchas == nil {
		return reject(ctx, flashgate.Unavailable), false
	}
	ok, err := g.captchas.Check(g.ioContext(), string(args.Peek("captcha_id")), string(args.Peek("captcha")))
	if err != nil {
		g.log.Warn("check captcha", "err", err)
		return reject(ctx, flashgate.Unavailable), false
	}
	if !ok {
		return rejectWith(ctx, flashgate.Forbidden, bodyNeedCaptcha), false
	}
	return flashgate.OK, true
}

// DevTokenPath is dev's demo sign-in (contract §12).
const DevTokenPath = "/dev/token"

// DevToken returns the handler of POST /dev/token {"user_id":N}: a shopper
// token for any user, valid for ttl. Only dev mounts it: it hands out
// tokens to anyone who asks.
func DevToken(signer *auth.Signer, ttl time.Duration) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != DevTokenPath {
			writeError(ctx, flashgate.Errorf(flashgate.NotFound, "no route for %s %s", ctx.Method(), ctx.Path()))
			return
		}
		var body struct {
			UserID json.RawMessage `json:"user_id"`
		}
		if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
			e := flashgate.Errorf(flashgate.Invalid, `body: want {"user_id":N}`)
			e.Status = 400
			writeError(ctx, e)
			return
		}
		// A bare decimal integer: not a string, a fraction or an exponent.
		user, err := strconv.ParseInt(string(body.UserID), 10, 64)
		if err != nil || user <= 0 {
			e := flashgate.Errorf(flashgate.Invalid, "user_id: required, a positive integer")
			e.Status = 422
			writeError(ctx, e)
			return
		}
		exp := time.Now().Add(ttl)
		writeJSON(ctx, 200, map[string]any{"code": "ok", "token": signer.Mint(user, exp), "user_id": user, "expires_at": exp.UTC().Truncate(time.Second)})
	}
}
