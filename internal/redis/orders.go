package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// orderChannel is the pub/sub channel of an order's status changes:
// <prefix>:order:<id>. Whoever changes an order's status publishes on it, in
// whatever process; the message is the new status as the publisher saw it.
func (s *Store) orderChannel(id string) string { return s.prefix + ":order:" + id }

// newOrdersChannel announces the orders the worker wrote (pending to
// unpaid), a batch per message: <prefix>:orders:new, the message being the
// ids separated by commas. One PUBLISH per batch instead of one per order:
// at a sale's rate the per-order announcements were one Redis command per
// order for the sake of the few orders someone watches.
func (s *Store) newOrdersChannel() string { return s.prefix + ":orders:new" }

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

// PublishNewOrders announces that the orders ids were written (their status
// is now unpaid), in one PUBLISH.
func (s *Store) PublishNewOrders(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.c.Do(ctx, s.c.B().Publish().Channel(s.newOrdersChannel()).Message(strings.Join(ids, ",")).Build()).Error(); err != nil {
		return fmt.Errorf("publish new orders: %w", err)
	}
	return nil
}

// OrderEvents fans the status messages of orders out to watchers in this
// process. It holds one Redis subscription per order watched, however many
// watchers the order has, for the changes of an order's status, and while
// it has watchers one subscription of the new-orders channel, for the
// orders the worker writes. It wakes every watcher of an order on each
// message about it and on each confirmation of either subscription (the
// first one, and any after a reconnection): a watcher that reads the order
// again on every wake-up, and once after its first, misses no change. That
// holds for the new-orders channel too: a watch that starts while its
// subscription is being made is woken by its confirmation, and one that
// starts after it hears every message from then on. Wake-ups carry no data
// and coalesce.
type OrderEvents struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	topics map[string]*topic // by order id
	// news ends the new-orders subscription; nil while there is none (no
	// watcher).
	news context.CancelFunc
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

	c      chan struct{}
	events *OrderEvents
	id     string
}

// NewOrderEvents returns a hub for s. Close it to end its subscriptions.
func NewOrderEvents(s *Store) *OrderEvents {
	ctx, cancel := context.WithCancel(context.Background())
	return &OrderEvents{s: s, ctx: ctx, cancel: cancel, topics: map[string]*topic{}}
}

// Watch starts watching an order. Close the watch when done.
func (e *OrderEvents) Watch(orderID string) *OrderWatch {
	c := make(chan struct{}, 1)
	w := &OrderWatch{C: c, c: c, events: e, id: orderID}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return w
	}
	if e.news == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		e.news = cancel
		e.wg.Go(func() { e.subscribe(ctx, e.s.newOrdersChannel(), e.wakeAll, e.wakeNew) })
	}
	t := e.topics[orderID]
	if t == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		t = &topic{watchers: map[*OrderWatch]struct{}{}, cancel: cancel}
		e.topics[orderID] = t
		wake := func() { e.wake(t) }
		e.wg.Go(func() {
			e.subscribe(ctx, e.s.orderChannel(orderID), wake, func(rueidis.PubSubMessage) { wake() })
		})
	}
	t.watchers[w] = struct{}{}
	return w
}

// Close stops the watch; the order's subscription ends with its last
// watcher, and the new-orders subscription with the last watcher of all.
func (w *OrderWatch) Close() {
	e := w.events
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.topics[w.id]
	if t == nil {
		return
	}
	if _, ok := t.watchers[w]; !ok {
		return
	}
	delete(t.watchers, w)
	if len(t.watchers) == 0 {
		t.cancel()
		delete(e.topics, w.id)
	}
	if len(e.topics) == 0 && e.news != nil {
		e.news()
		e.news = nil
	}
}

// wake pokes every watcher of t without blocking.
func (e *OrderEvents) wake(t *topic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wakeLocked(t)
}

func (e *OrderEvents) wakeLocked(t *topic) {
	t.gen++
	for w := range t.watchers {
		select {
		case w.c <- struct{}{}:
		default:
		}
	}
}

// wakeAll pokes every watcher: the new-orders subscription was confirmed,
// and what it missed before is read again.
func (e *OrderEvents) wakeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.topics {
		e.wakeLocked(t)
	}
}

// wakeNew pokes the watchers of the orders a new-orders message lists.
func (e *OrderEvents) wakeNew(m rueidis.PubSubMessage) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for rest, more := m.Message, true; more; {
		var id string
		id, rest, more = strings.Cut(rest, ",")
		if t := e.topics[id]; t != nil {
			e.wakeLocked(t)
		}
	}
}

// subscribe holds the subscription of channel until ctx ends, calling
// confirmed on each confirmation and message on each message. Receive
// returns early when the connection drops, or when another subscriber of
// the same channel that just ended unsubscribed it (subscriptions of one
// channel share the connection): it subscribes again, and the confirmation
// wakes the watchers, who read the order again.
func (e *OrderEvents) subscribe(ctx context.Context, channel string, confirmed func(), message func(rueidis.PubSubMessage)) {
	c := e.s.c
	rctx := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "subscribe" {
			confirmed()
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
		err := c.Receive(rctx, c.B().Subscribe().Channel(channel).Build(), message)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue // unsubscribed by another subscriber's cleanup: subscribe again at once
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
	if t := e.topics[w.id]; t != nil {
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
