package payment

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/gateway"
	"github.com/flashgate/flashgate/internal/redis"
)

// Timing of the status WebSocket.
const (
	wsWriteWait = 5 * time.Second
	wsPongWait  = 60 * time.Second
	wsPing      = 25 * time.Second
	// wsCheck is how old the last read of a watched order may be before a
	// ping tick reads it again, in case a publish was lost: once per order
	// and period, shared by all its sockets.
	wsCheck = 2 * wsPing
)

// statusMessage is what the WebSocket sends.
type statusMessage struct {
	OrderID string                `json:"order_id"`
	Status  flashgate.OrderStatus `json:"status"`
}

// watch is GET /api/v1/orders/{order_id}/ws?token=JWT. The token and the
// ownership are checked before the upgrade, so a bad token answers 401 and
// someone else's (or an unknown) order 404, as plain HTTP; a shopper or a
// gateway over its cap of open sockets gets 429. It returns the
// code of the answer: ok once upgraded.
func (s *Service) watch(ctx *fasthttp.RequestCtx, id string) flashgate.Code {
	user, err := s.signer.Verify(ctx.QueryArgs().Peek("token"), ctx.Time())
	if err != nil {
		return gateway.WriteError(ctx, flashgate.Errorf(flashgate.Unauthorized, "missing or bad token in the token query parameter"))
	}
	release, ok := s.openWS(user)
	if !ok {
		ctx.Response.Header.Set("Retry-After", "5")
		return gateway.WriteError(ctx, flashgate.Errorf(flashgate.RateLimited, "too many open order WebSockets; close one first"))
	}
	c, cancel := s.requestCtx()
	o, err := s.gw.Order(c, user, id)
	cancel()
	if err != nil {
		release()
		return s.writeError(ctx, err)
	}
	// fasthttp runs the handler only once the 101 is written: a client
	// that goes before would hold its place forever, so a place not taken
	// up within the handshake timeout is given back.
	var started atomic.Bool
	time.AfterFunc(2*s.ws.HandshakeTimeout+time.Second, func() {
		if started.CompareAndSwap(false, true) {
			release()
		}
	})
	err = s.ws.Upgrade(ctx, func(conn *websocket.Conn) {
		if !started.CompareAndSwap(false, true) {
			conn.Close() // too late: its place was given back
			return
		}
		defer release()
		if !s.track() {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(wsWriteWait))
			conn.Close()
			return
		}
		defer s.conns.Done()
		s.push(conn, user, o)
	})
	if err != nil {
		if started.CompareAndSwap(false, true) {
			release()
		}
		// Not a WebSocket handshake: the upgrader answered invalid.
		s.log.Debug("websocket upgrade", "err", err)
		return flashgate.Invalid
	}
	return flashgate.OK
}

// openWS counts a socket of user, unless a cap is reached, and returns
// the function that gives its place back (once).
func (s *Service) openWS(user int64) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if (s.cfg.WSMax > 0 && s.wsOpen >= s.cfg.WSMax) || (s.cfg.WSPerUser > 0 && s.wsUsers[user] >= s.cfg.WSPerUser) {
		return nil, false
	}
	s.wsOpen++
	s.wsUsers[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.wsOpen--
			if s.wsUsers[user]--; s.wsUsers[user] <= 0 {
				delete(s.wsUsers, user)
			}
		})
	}, true
}

// feed is the shared read of one watched order: every socket of the order
// that wakes for a change uses the read started after that change was
// announced, so one change costs one read however many sockets watch.
type feed struct {
	refs int // sockets of the order
	cur  *read
}

// read is one read of an order.
type read struct {
	gen  uint64    // the order's wake-ups before the read started
	at   time.Time // when it started
	done chan struct{}
	o    *flashgate.Order
	err  error
}

// status returns the order as read at or after wake-up gen and, when
// maxAge is set, less than maxAge ago; it reads MySQL only when no read of
// the order shared by its sockets is recent enough.
func (s *Service) status(w *redis.OrderWatch, user int64, id string, gen uint64, maxAge time.Duration) (*flashgate.Order, error) {
	s.mu.Lock()
	f := s.feeds[id]
	r := f.cur
	if r == nil || r.gen < gen || (maxAge > 0 && time.Since(r.at) >= maxAge) {
		r = &read{gen: w.Gen(), at: time.Now(), done: make(chan struct{})}
		f.cur = r
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.base, 5*time.Second)
		s.statusReads.Add(1)
		r.o, r.err = s.gw.Order(ctx, user, id)
		cancel()
		if r.err != nil {
			// Not to be shared: the next wake-up reads again.
			s.mu.Lock()
			if f.cur == r {
				f.cur = nil
			}
			s.mu.Unlock()
		}
		close(r.done)
		return r.o, r.err
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.o, r.err
	case <-s.base.Done():
		return nil, s.base.Err()
	}
}

// joinFeed registers a socket of order id; leaveFeed ends it.
func (s *Service) joinFeed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[id]
	if f == nil {
		f = &feed{}
		s.feeds[id] = f
	}
	f.refs++
}

func (s *Service) leaveFeed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.feeds[id]; f != nil {
		if f.refs--; f.refs <= 0 {
			delete(s.feeds, id)
		}
	}
}

// push sends the order's status at once and after every change until the
// client goes or the service stops. Every wake-up of the order's watch (a
// published change, or the subscription confirmed) takes the order as read
// after it, in one read shared by every socket of the order, and sends its
// status if it differs from the last one sent: the read after the
// subscription is confirmed closes the race with a change made between the
// first read and the subscription. Pings cost no read; a ping tick rereads
// the order only when nothing read it for wsCheck (a lost publish).
func (s *Service) push(conn *websocket.Conn, user int64, first *flashgate.Order) {
	w := s.events.Watch(first.ID)
	defer w.Close()
	s.joinFeed(first.ID)
	defer s.leaveFeed(first.ID)

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
		var (
			o   *flashgate.Order
			err error
		)
		select {
		case <-w.C:
			o, err = s.status(w, user, first.ID, w.Gen(), 0)
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)) != nil {
				return
			}
			o, err = s.status(w, user, first.ID, 0, wsCheck)
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
		if err != nil {
			s.log.Debug("websocket: read order", "order", first.ID, "err", err)
			continue
		}
		if !send(o.Status) {
			return
		}
	}
}
