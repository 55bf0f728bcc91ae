package payment

import (
	"context"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/gateway"
)

// Timing of the status WebSocket.
const (
	wsWriteWait = 5 * time.Second
	wsPongWait  = 60 * time.Second
	wsPing      = 25 * time.Second
)

// statusMessage is what the WebSocket sends.
type statusMessage struct {
	OrderID string                `json:"order_id"`
	Status  flashgate.OrderStatus `json:"status"`
}

// watch is GET /api/v1/orders/{order_id}/ws?token=JWT. The token and the
// ownership are checked before the upgrade, so a bad token answers 401 and
// someone else's (or an unknown) order 404, as plain HTTP. It returns the
// code of the answer: ok once upgraded.
func (s *Service) watch(ctx *fasthttp.RequestCtx, id string) flashgate.Code {
	user, err := s.signer.Verify(ctx.QueryArgs().Peek("token"), ctx.Time())
	if err != nil {
		return gateway.WriteError(ctx, flashgate.Errorf(flashgate.Unauthorized, "missing or bad token in the token query parameter"))
	}
	c, cancel := s.requestCtx()
	o, err := s.gw.Order(c, user, id)
	cancel()
	if err != nil {
		return s.writeError(ctx, err)
	}
	err = s.ws.Upgrade(ctx, func(conn *websocket.Conn) {
		if !s.track() {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(wsWriteWait))
			conn.Close()
			return
		}
		defer s.conns.Done()
		s.push(conn, user, o)
	})
	if err != nil {
		// Not a WebSocket handshake: the upgrader answered invalid.
		s.log.Debug("websocket upgrade", "err", err)
		return flashgate.Invalid
	}
	return flashgate.OK
}

// push sends the order's status at once and after every change until the
// client goes or the service stops. Every wake-up of the order's watch
// (a published change, or the subscription confirmed) reads the order again
// and sends its status if it differs from the last one sent: the read after
// the subscription is confirmed closes the race with a change made between
// the first read and the subscription.
func (s *Service) push(conn *websocket.Conn, user int64, first *flashgate.Order) {
	w := s.events.Watch(first.ID)
	defer w.Close()

	gone := make(chan struct{})
	go func() {
		defer close(gone)
		conn.SetReadLimit(512)
		conn.SetReadDeadline(time.Now().Add(wsPongWait))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	defer func() {
		// Closing a hijacked fasthttp connection is left to fasthttp, once
		// this returns: stop the reader with a deadline instead.
		conn.SetReadDeadline(time.Now())
		conn.Close()
		<-gone
	}()

	var last flashgate.OrderStatus
	send := func(st flashgate.OrderStatus) bool {
		if st == last {
			return true
		}
		last = st
		conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		return conn.WriteJSON(statusMessage{OrderID: first.ID, Status: st}) == nil
	}
	if !send(first.Status) {
		return
	}
	ping := time.NewTicker(wsPing)
	defer ping.Stop()
	for {
		select {
		case <-w.C:
			ctx, cancel := context.WithTimeout(s.base, 5*time.Second)
			o, err := s.gw.Order(ctx, user, first.ID)
			cancel()
			if err != nil {
				s.log.Debug("websocket: read order", "order", first.ID, "err", err)
				continue
			}
			if !send(o.Status) {
				return
			}
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)) != nil {
				return
			}
			// A lost message (a publish that failed) is caught here.
			w.Poke()
		case <-gone:
			return
		case <-s.base.Done():
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(wsWriteWait))
			select { // let the client answer the close
			case <-gone:
			case <-time.After(time.Second):
			}
			return
		}
	}
}
