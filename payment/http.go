package payment

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/admin"
	"github.com/flashgate/flashgate/gateway"
	"github.com/flashgate/flashgate/internal/auth"
	"github.com/flashgate/flashgate/internal/mysql"
)

const ordersPrefix = "/api/v1/orders/"

// MountGateway mounts the public endpoints on g (call before it serves):
//
//	GET  /api/v1/orders/{order_id}/ws?token=JWT   status push (WebSocket)
//	POST /api/v1/orders/{order_id}/pay            {"channel":"alipay"|"points"}
//	POST /api/v1/orders/{order_id}/refund
//	POST /pay/alipay/notify                       Alipay's asynchronous notify
//	GET  /pay/alipay/return                       Alipay's synchronous return
//
// signer checks the token of the WebSocket, which browsers can only put in
// the query.
func (s *Service) MountGateway(g *gateway.Gateway, signer *auth.Signer) {
	s.gw, s.signer = g, signer
	s.ws = websocket.FastHTTPUpgrader{
		HandshakeTimeout: 5 * time.Second,
		// The token travels in the query, not in a cookie, so a page from
		// another origin can do nothing a holder of the token could not:
		// accept every origin, as the dev console and apps need.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
		Error: func(ctx *fasthttp.RequestCtx, status int, reason error) {
			gateway.WriteError(ctx, &flashgate.Error{Code: flashgate.Invalid, Status: status, Message: "websocket: " + reason.Error()})
		},
	}
	g.HandleRoute("GET", ordersPrefix+"{order_id}/ws", []string{routeWS}, s.getOrderAction)
	g.HandleRoute("POST", ordersPrefix+"{order_id}/pay", []string{routePay, routeRefund}, s.postOrderAction)
	g.HandleRoute("POST", ordersPrefix+"{order_id}/refund", []string{routePay, routeRefund}, s.postOrderAction)
	g.HandleRoute("POST", NotifyPath, []string{routeNotify}, s.notify)
	g.HandleRoute("GET", ReturnPath, []string{routeReturn}, s.alipayReturn)
}

// Routes of the payment endpoints in flashgate_gateway_requests_total;
// routeNone is the gateway's name for a path that matches no route.
const (
	routeWS     = "ws"
	routePay    = "pay"
	routeRefund = "refund"
	routeNotify = "notify"
	routeReturn = "return"
	routeNone   = "none"
)

// MountAdmin mounts the admin endpoints on a:
//
//	POST /admin/v1/points/{user_id}   {"delta":N}: grant (or take) points
//	GET  /admin/v1/points/{user_id}   the balance
func (s *Service) MountAdmin(a *admin.Server) {
	a.Handle("POST /admin/v1/points/{user_id}", s.grantPoints)
	a.Handle("GET /admin/v1/points/{user_id}", s.getPoints)
}

// orderAction splits /api/v1/orders/{order_id}/{action}.
func orderAction(ctx *fasthttp.RequestCtx) (id, action string, ok bool) {
	rest := string(ctx.Path()[len(ordersPrefix):])
	id, action, ok = strings.Cut(rest, "/")
	return id, action, ok && id != "" && !strings.Contains(action, "/")
}

func noRoute(ctx *fasthttp.RequestCtx) (string, flashgate.Code) {
	return routeNone, gateway.WriteError(ctx, flashgate.Errorf(flashgate.NotFound, "no route for %s %s", ctx.Method(), ctx.Path()))
}

func (s *Service) getOrderAction(ctx *fasthttp.RequestCtx) (string, flashgate.Code) {
	id, action, ok := orderAction(ctx)
	if !ok || action != "ws" {
		return noRoute(ctx)
	}
	return routeWS, s.watch(ctx, id)
}

func (s *Service) postOrderAction(ctx *fasthttp.RequestCtx) (string, flashgate.Code) {
	id, action, ok := orderAction(ctx)
	if !ok || (action != routePay && action != routeRefund) {
		return noRoute(ctx)
	}
	user, ok := s.gw.Shopper(ctx)
	if !ok {
		return action, gateway.WriteError(ctx, flashgate.Errorf(flashgate.Unauthorized, "missing or bad shopper token"))
	}
	c, cancel := s.requestCtx()
	defer cancel()
	if action == routeRefund {
		o, err := s.Refund(c, user, id)
		return action, s.answerOrder(ctx, o, err)
	}
	channel, wap, err := payChannel(ctx.PostBody())
	if err != nil {
		return action, gateway.WriteError(ctx, err)
	}
	if channel == mysql.ChannelAlipay {
		u, err := s.PayAlipay(c, user, id, wap)
		if err != nil {
			return action, s.writeError(ctx, err)
		}
		gateway.WriteJSON(ctx, 200, map[string]string{"code": "ok", "pay_url": u})
		return action, flashgate.OK
	}
	o, err := s.PayPoints(c, user, id)
	return action, s.answerOrder(ctx, o, err)
}

func invalid(status int, format string, args ...any) error {
	e := flashgate.Errorf(flashgate.Invalid, format, args...)
	e.Status = status
	return e
}

// payChannel reads {"channel":"alipay"|"points"} with, for alipay, an
// optional "mode": "page" (the default, alipay.trade.page.pay) or "wap"
// (alipay.trade.wap.pay, for phones).
func payChannel(body []byte) (channel string, wap bool, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", false, invalid(400, `body: empty; want {"channel":"alipay"} or {"channel":"points"}`)
	}
	var req struct {
		Channel *string `json:"channel"`
		Mode    *string `json:"mode"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && (te.Field == "channel" || te.Field == "mode") {
			return "", false, invalid(400, "%s: must be a string", te.Field)
		}
		return "", false, invalid(400, "body: malformed JSON: %v", err)
	}
	switch {
	case req.Channel == nil:
		return "", false, invalid(422, "channel: required, alipay or points")
	case *req.Channel != mysql.ChannelAlipay && *req.Channel != mysql.ChannelPoints:
		return "", false, invalid(422, "channel: must be alipay or points, not %q", *req.Channel)
	case req.Mode != nil && *req.Channel != mysql.ChannelAlipay:
		return "", false, invalid(422, "mode: only for the alipay channel")
	case req.Mode != nil && *req.Mode != "page" && *req.Mode != "wap":
		return "", false, invalid(422, "mode: must be page or wap, not %q", *req.Mode)
	}
	return *req.Channel, req.Mode != nil && *req.Mode == "wap", nil
}

func (s *Service) answerOrder(ctx *fasthttp.RequestCtx, o *flashgate.Order, err error) flashgate.Code {
	if err != nil {
		return s.writeError(ctx, err)
	}
	gateway.WriteJSON(ctx, 200, map[string]any{"code": "ok", "order": gateway.OrderView(o)})
	return flashgate.OK
}

// writeError answers err; anything but a domain error is logged and
// answered as a dependency failure, without detail. It returns the code.
func (s *Service) writeError(ctx *fasthttp.RequestCtx, err error) flashgate.Code {
	var fe *flashgate.Error
	if !errors.As(err, &fe) {
		s.log.Error("payment request", "path", string(ctx.Path()), "err", err)
		err = flashgate.Errorf(flashgate.Unavailable, "a dependency is unavailable; try again")
	}
	return gateway.WriteError(ctx, err)
}

// notify is POST /pay/alipay/notify; it answers Alipay in plain text. The
// request metrics count a refused notify as invalid, one not recorded as
// unavailable (flashgate_payment_notifies_total says more).
func (s *Service) notify(ctx *fasthttp.RequestCtx) (string, flashgate.Code) {
	if string(ctx.Path()) != NotifyPath {
		return noRoute(ctx)
	}
	c, cancel := s.requestCtx()
	defer cancel()
	result := s.applyNotify(c, ctx.PostBody())
	s.m.notifies.WithLabelValues(result).Inc()
	answer, code := notifySuccess, flashgate.OK
	switch result {
	case notifyRefused:
		answer, code = notifyFailure, flashgate.Invalid
	case notifyError:
		answer, code = notifyFailure, flashgate.Unavailable
	}
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(200)
	ctx.SetBodyString(answer)
	return routeNotify, code
}

var returnPage = template.Must(template.New("return").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>flashgate: order {{.OrderID}}</title>
{{if .Refresh}}<meta http-equiv="refresh" content="2">{{end}}
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}
.status{font-size:1.6em;font-weight:600}</style></head>
<body><h1>Order {{.OrderID}}</h1>
<p class="status" id="status">{{.Status}}</p>
<p>{{.Note}}</p>
{{if .ItemURL}}<p><a id="back" href="{{.ItemURL}}">‹ Back to the item</a></p>{{end}}</body></html>
`))

// alipayReturn is GET /pay/alipay/return: the buyer's browser back from the
// cashier. It shows the order's status and never changes it.
func (s *Service) alipayReturn(ctx *fasthttp.RequestCtx) (string, flashgate.Code) {
	if string(ctx.Path()) != ReturnPath {
		return noRoute(ctx)
	}
	q, err := url.ParseQuery(string(ctx.QueryArgs().QueryString()))
	var v *ReturnView
	if err == nil {
		c, cancel := s.requestCtx()
		v, err = s.Return(c, q)
		cancel()
	} else {
		err = flashgate.Errorf(flashgate.Invalid, "this return does not come from alipay")
	}
	data := struct {
		OrderID, Status, Note, ItemURL string
		Refresh                        bool
	}{OrderID: "?", Status: "unknown"}
	status, code := 200, flashgate.OK
	switch {
	case err != nil:
		code = flashgate.ErrorCode(err)
		status = flashgate.HTTPStatus(code)
		if code == flashgate.Internal {
			s.log.Error("alipay return", "err", err)
			status = http.StatusServiceUnavailable
		}
		data.Note = flashgate.ErrorMessage(err)
		if code == flashgate.Internal {
			data.Note = "the order cannot be read now; try again"
			code = flashgate.Unavailable
		}
	default:
		data.OrderID, data.Status = v.OrderID, string(v.Status)
		if item, ok := flashgate.OrderItem(v.OrderID); ok {
			data.ItemURL = "/items/" + strconv.FormatInt(item, 10)
		}
		switch {
		case v.Status == flashgate.OrderPaid:
			data.Note = "Thank you: the payment is confirmed."
		case v.Status == flashgate.OrderUnpaid && !v.Left:
			data.Note = "Alipay has sent you back; the payment is being confirmed. This page refreshes by itself."
			data.Refresh = true
		case v.Status == flashgate.OrderUnpaid:
			data.Note = "The order is not paid yet."
		}
	}
	var b bytes.Buffer
	if err := returnPage.Execute(&b, data); err != nil {
		s.log.Error("render return page", "err", err)
	}
	ctx.Response.Header.SetContentType("text/html; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBody(b.Bytes())
	return routeReturn, code
}

// grantPoints is POST /admin/v1/points/{user_id} {"delta":N}.
func (s *Service) grantPoints(w http.ResponseWriter, r *http.Request) {
	user, err := admin.PathID(r, "user_id")
	if err != nil {
		admin.WriteError(w, err)
		return
	}
	var body struct {
		Delta *int64 `json:"delta"`
	}
	if err := admin.DecodeJSON(r, &body); err != nil {
		admin.WriteError(w, err)
		return
	}
	if body.Delta == nil {
		admin.WriteError(w, invalid(422, "delta: required (an integer, negative to take points)"))
		return
	}
	if *body.Delta > 1e15 || *body.Delta < -1e15 {
		admin.WriteError(w, invalid(422, "delta: must be from -1000000000000000 to 1000000000000000"))
		return
	}
	balance, err := s.GrantPoints(r.Context(), user, *body.Delta)
	if err != nil {
		s.adminError(w, "grant points", err)
		return
	}
	admin.WriteJSON(w, 200, map[string]any{"code": "ok", "user_id": user, "balance": balance})
}

// getPoints is GET /admin/v1/points/{user_id}.
func (s *Service) getPoints(w http.ResponseWriter, r *http.Request) {
	user, err := admin.PathID(r, "user_id")
	if err != nil {
		admin.WriteError(w, err)
		return
	}
	balance, err := s.db.PointsBalance(r.Context(), user)
	if err != nil {
		s.adminError(w, "read points", err)
		return
	}
	admin.WriteJSON(w, 200, map[string]any{"code": "ok", "user_id": user, "balance": balance})
}

func (s *Service) adminError(w http.ResponseWriter, what string, err error) {
	var fe *flashgate.Error
	if !errors.As(err, &fe) {
		s.log.Error(what, "err", err)
		err = flashgate.Errorf(flashgate.Unavailable, "%s failed: a dependency is unavailable", what)
	}
	admin.WriteError(w, err)
}
