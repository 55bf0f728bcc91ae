package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// orderChannel is the pub/sub channel of an order's status changes:
// <prefix>:order:<id>. Whoever changes an order's status publishes on it, in
// whatever process; the message is the new status as the publisher saw it.
func (s *Store) orderChannel(id string) string { return s.prefix + ":order:" + id }

// PublishOrders announces that the orders ids changed status (to status,
// as far as the publisher knows: watchers read the order again anyway).
func (s *Store) PublishOrders(ctx context.Context, status string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = s.c.B().Publish().Channel(s.orderChannel(id)).Message(status).Build()
	}
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("publish order status: %w", err)
		}
	}
	return nil
}

// OrderEvents fans the status messages of orders out to watchers in this
// process. It holds one Redis subscription per order watched, however many
// watchers the order has, and wakes every watcher of an order on each
// message and on each confirmation of its subscription (the first one, and
// any after a reconnection): a watcher that reads the order again on every
// wake-up, and once after its first, misses no change. Wake-ups carry no
// data and coalesce.
type OrderEvents struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	topics map[string]*topic
}

type topic struct {
	watchers map[*OrderWatch]struct{}
	cancel   context.CancelFunc
	gen      uint64 // wake-ups so far, guarded by OrderEvents.mu
}

// OrderWatch is one watcher of one order.
type OrderWatch struct {
	// C receives a wake-up when the order may have changed.
	C <-chan struct{}

	c       chan struct{}
	events  *OrderEvents
	channel string
}

// NewOrderEvents returns a hub for s. Close it to end its subscriptions.
func NewOrderEvents(s *Store) *OrderEvents {
	ctx, cancel := context.WithCancel(context.Background())
	return &OrderEvents{s: s, ctx: ctx, cancel: cancel, topics: map[string]*topic{}}
}

// Watch starts watching an order. Close the watch when done.
func (e *OrderEvents) Watch(orderID string) *OrderWatch {
	c := make(chan struct{}, 1)
	w := &OrderWatch{C: c, c: c, events: e, channel: e.s.orderChannel(orderID)}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return w
	}
	t := e.topics[w.channel]
	if t == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		t = &topic{watchers: map[*OrderWatch]struct{}{}, cancel: cancel}
		e.topics[w.channel] = t
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.subscribe(ctx, w.channel, t)
		}()
	}
	t.watchers[w] = struct{}{}
	return w
}

// Close stops the watch; the order's subscription ends with its last watcher.
func (w *OrderWatch) Close() {
	e := w.events
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.topics[w.channel]
	if t == nil {
		return
	}
	if _, ok := t.watchers[w]; !ok {
		return
	}
	delete(t.watchers, w)
	if len(t.watchers) == 0 {
		t.cancel()
		delete(e.topics, w.channel)
	}
}

// wake pokes every watcher of t without blocking.
func (e *OrderEvents) wake(t *topic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t.gen++
	for w := range t.watchers {
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}

// subscribe holds the subscription of channel until ctx ends. Receive
// returns early when the connection drops, or when another topic of the same
// channel that just ended unsubscribed it (subscriptions of one channel
// share the connection): it subscribes again, and the confirmation wakes the
// watchers, who read the order again.
func (e *OrderEvents) subscribe(ctx context.Context, channel string, t *topic) {
	c := e.s.c
	rctx := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "subscribe" {
			e.wake(t)
		}
	})
	rctx = rueidis.WithOnReceiveReturnHook(rctx, func(err error, cc rueidis.CommandClient) error {
		if ctx.Err() != nil {
			// Leave no subscription behind on the shared connection.
			uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			cc.Do(uctx, cc.B().Unsubscribe().Channel(channel).Build())
		}
		return err
	})
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := c.Receive(rctx, c.B().Subscribe().Channel(channel).Build(), func(rueidis.PubSubMessage) { e.wake(t) })
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue // unsubscribed by another topic's cleanup: subscribe again at once
		}
		e.s.log.Warn("order status subscription lost; retrying", "channel", channel, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Close ends every subscription and waits for them. Watches stay open but
// are never woken again.
func (e *OrderEvents) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// Gen returns how many wake-ups the order's watchers have had: a read of the
// order started after Gen returned g sees every change announced by the
// wake-ups up to g, so watchers of one order can share such a read.
func (w *OrderWatch) Gen() uint64 {
	e := w.events
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.topics[w.channel]; t != nil {
		return t.gen
	}
	return 0
}

// Poke wakes the watch itself, as a message would.
func (w *OrderWatch) Poke() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}
