package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/gateway"
)

func TestCaptchaGuardsThePath(t *testing.T) {
	h := newHarness(t)
	g := h.gateway(gateway.Config{})
	newCaptcha := func() (id, answer string) {
		t.Helper()
		ctx := request("GET", "/api/v1/captcha", "", clientAddr)
		serve(g, ctx)
		var body struct{ Code, CaptchaID, Image string }
		json.Unmarshal(ctx.Response.Body(), &struct {
			Code      *string `json:"code"`
			CaptchaID *string `json:"captcha_id"`
			Image     *string `json:"image"`
		}{&body.Code, &body.CaptchaID, &body.Image})
		if ctx.Response.StatusCode() != 200 || body.Code != "ok" || body.CaptchaID == "" || !strings.HasPrefix(body.Image, "data:image/png;base64,") {
			t.Fatalf("captcha: %d %.200s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		if cc := string(ctx.Response.Header.Peek("Cache-Control")); cc != "no-store" {
			t.Errorf("captcha Cache-Control %q", cc)
		}
		c := h.store.Client()
		answer, err := c.Do(context.Background(), c.B().Get().Key(h.store.Prefix()+":captcha:"+body.CaptchaID).Build()).ToString()
		if err != nil {
			t.Fatalf("the answer is not in Redis under the prefix: %v", err)
		}
		return body.CaptchaID, answer
	}
	path := func(item int64, query string) *fasthttp.RequestCtx {
		ctx := request("GET", buyURI(item)+"/path"+query, h.token(7), clientAddr)
		serve(g, ctx)
		return ctx
	}
	q := func(id, answer string) string {
		return "?captcha_id=" + url.QueryEscape(id) + "&captcha=" + url.QueryEscape(answer)
	}

	if ctx := path(itemCaptcha, ""); ctx.Response.StatusCode() != 403 || answerCode(ctx) != flashgate.Forbidden {
		t.Fatalf("no captcha: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	id, answer := newCaptcha()
	wrong := "00000"
	if answer == wrong {
		wrong = "11111"
	}
	if ctx := path(itemCaptcha, q(id, wrong)); ctx.Response.StatusCode() != 403 || !strings.Contains(string(ctx.Response.Body()), "captcha") {
		t.Fatalf("wrong answer: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if ctx := path(itemCaptcha, q(id, answer)); ctx.Response.StatusCode() != 403 {
		t.Fatalf("the right answer after a wrong one (one try per captcha): %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	id, answer = newCaptcha()
	ctx := path(itemCaptcha, q(id, answer))
	var ok struct{ Code, Path string }
	if json.Unmarshal(ctx.Response.Body(), &ok); ctx.Response.StatusCode() != 200 || ok.Path == "" {
		t.Fatalf("right answer: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if !h.paths.Verify([]byte(ok.Path), 7, itemCaptcha, time.Now()) {
		t.Fatal("the path handed out against the captcha does not verify")
	}
	if ctx := path(itemCaptcha, q(id, answer)); ctx.Response.StatusCode() != 403 {
		t.Fatalf("an answer used twice: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	// Items without the captcha need none.
	if ctx := path(itemOpen, ""); ctx.Response.StatusCode() != 200 {
		t.Fatalf("path of an item without captcha: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	// The buy never asks for the captcha, but it needs the path token that
	// only a solved captcha gets, though the item was not created with
	// require_path: a buy that could skip the path would skip the captcha.
	buy := request("POST", buyURI(itemCaptcha), h.token(7), clientAddr)
	serve(g, buy)
	if buy.Response.StatusCode() != 403 || answerCode(buy) != flashgate.Forbidden {
		t.Fatalf("buy of a captcha item without the path: %d %s", buy.Response.StatusCode(), buy.Response.Body())
	}
	buy = request("POST", buyURI(itemCaptcha)+"?path="+ok.Path, h.token(7), clientAddr)
	serve(g, buy)
	if buy.Response.StatusCode() != 202 {
		t.Fatalf("buy of a captcha item with the path its captcha got: %d %s", buy.Response.StatusCode(), buy.Response.Body())
	}
	// The item shows the requirements to pages.
	item := request("GET", fmt.Sprintf("/api/v1/items/%d", itemCaptcha), "", clientAddr)
	serve(g, item)
	if b := string(item.Response.Body()); !strings.Contains(b, `"require_path":true`) || !strings.Contains(b, `"require_captcha":true`) {
		t.Fatalf("item answer: %s", b)
	}
}

var assetRef = regexp.MustCompile(`/static/shop\.js\?v=[0-9a-f]{12}`)

func TestStorefrontPages(t *testing.T) {
	h := newHarness(t)
	g := h.gateway(gateway.Config{})
	get := func(uri string, headers ...string) *fasthttp.RequestCtx {
		ctx := request("GET", uri, "", clientAddr, headers...)
		serve(g, ctx)
		return ctx
	}
	index := get("/")
	body := string(index.Response.Body())
	if index.Response.StatusCode() != 200 || !strings.HasPrefix(string(index.Response.Header.ContentType()), "text/html") {
		t.Fatalf("GET /: %d %s", index.Response.StatusCode(), index.Response.Header.ContentType())
	}
	etag := string(index.Response.Header.Peek("ETag"))
	if !strings.HasPrefix(etag, `"`) || string(index.Response.Header.Peek("Cache-Control")) != "no-cache" {
		t.Fatalf("GET /: ETag %q, Cache-Control %q", etag, index.Response.Header.Peek("Cache-Control"))
	}
	if strings.Contains(body, "{{v}}") || !assetRef.MatchString(body) {
		t.Fatalf("GET /: asset links not versioned:\n%s", body)
	}
	again := get("/", "If-None-Match", etag)
	if again.Response.StatusCode() != 304 || len(again.Response.Body()) != 0 {
		t.Fatalf("revalidation: %d, %d bytes", again.Response.StatusCode(), len(again.Response.Body()))
	}
	js := get(assetRef.FindString(body), "Accept-Encoding", "br, gzip")
	if js.Response.StatusCode() != 200 || string(js.Response.Header.Peek("Content-Encoding")) != "gzip" ||
		!strings.Contains(string(js.Response.Header.Peek("Cache-Control")), "immutable") ||
		!strings.Contains(string(js.Response.Header.ContentType()), "javascript") {
		t.Fatalf("asset: %d %q %q %q", js.Response.StatusCode(), js.Response.Header.Peek("Content-Encoding"),
			js.Response.Header.Peek("Cache-Control"), js.Response.Header.ContentType())
	}
	if gz := string(js.Response.Header.Peek("ETag")); gz == etag || !strings.HasSuffix(gz, `-gz"`) {
		t.Fatalf("gzipped asset ETag %q", gz)
	}
	if item := get("/items/101"); item.Response.StatusCode() != 200 || !strings.Contains(string(item.Response.Body()), `data-page="item"`) {
		t.Fatalf("item page: %d", item.Response.StatusCode())
	}
	for _, uri := range []string{"/items/abc", "/items/0", "/static/nope.js", "/static/../item.html", "/nope"} {
		if ctx := get(uri); ctx.Response.StatusCode() != 404 {
			t.Errorf("GET %s: %d", uri, ctx.Response.StatusCode())
		}
	}
	// Only dev signs shoppers in: a gateway answers the path 404.
	dev := request("POST", gateway.DevTokenPath, "", clientAddr)
	dev.Request.SetBodyString(`{"user_id":5}`)
	serve(g, dev)
	if dev.Response.StatusCode() != 404 {
		t.Fatalf("POST /dev/token on a gateway: %d %s", dev.Response.StatusCode(), dev.Response.Body())
	}
}

func TestDevToken(t *testing.T) {
	h := newHarness(t)
	handler := gateway.DevToken(h.signer, time.Hour)
	post := func(body string) *fasthttp.RequestCtx {
		ctx := request("POST", gateway.DevTokenPath, "", clientAddr)
		ctx.Request.SetBodyString(body)
		handler(ctx)
		return ctx
	}
	ctx := post(`{"user_id":42}`)
	var ok struct {
		Code, Token string
		UserID      int64 `json:"user_id"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &ok); err != nil || ctx.Response.StatusCode() != 200 || ok.Code != "ok" {
		t.Fatalf("dev token: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if user, err := h.signer.Verify([]byte(ok.Token), time.Now()); err != nil || user != 42 {
		t.Fatalf("token verifies as %d, %v", user, err)
	}
	for body, status := range map[string]int{``: 400, `{`: 400, `{}`: 422, `{"user_id":0}`: 422, `{"user_id":-3}`: 422,
		`{"user_id":"7"}`: 422, `{"user_id":1.5}`: 422, `{"user_id":99999999999999999999}`: 422} {
		if ctx := post(body); ctx.Response.StatusCode() != status || answerCode(ctx) != flashgate.Invalid {
			t.Errorf("body %q: %d %s, want %d", body, ctx.Response.StatusCode(), ctx.Response.Body(), status)
		}
	}
}
