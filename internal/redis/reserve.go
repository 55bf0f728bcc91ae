package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
)

// maxCallsInFlight bounds the reserve calls a store has in flight on a Redis of
// one primary (standalone, or behind Sentinel), where every shard shares
// one thread: a call's fixed cost (the Lua call, the fence, the stock, one
// write each of marks and outbox, a round trip) is most of what a call of a
// few buyers costs Redis. While that many calls are out, the leader of the
// next waits, and the buys of its shard that arrive meanwhile go in its call
// too: under a storm on 8 shards a call carried 13 buyers instead of 6, and
// Redis spent 1.1 µs less an order (docs/performance.md). A lone buy still
// goes at once. On Redis Cluster there is no such bound: one bound for all
// nodes would let calls stuck on a node that hangs hold the turns that the
// calls to the others need, and the client does not tell a key's node.
const maxCallsInFlight = 2

// maxBatch bounds the buyers of one reserve call, so that one call holds
// Redis (which runs a script to its end before anything else) for a bounded
// time: about 2.5 to 3.5 µs of Redis CPU a buyer in a full call
// (scripts/reserve-bench.sh, docs/performance.md), so at most about 0.2 ms
// a call.
const maxBatch = 64

// reserveQueue coalesces the buys of one shard (natural batching): a buy
// whose shard has a reserve call in flight waits for that call to end and
// goes in the next one, with every other buy that arrived meanwhile. There
// is no timer: a buy that finds no call in flight goes at once, alone,
// unless the store has maxCallsInFlight calls in flight already.
//
// A call is sent by its leader, the first buyer of its batch. When it ends
// the leader hands the queue (up to maxBatch) to its first waiter, who
// leads the next call, then gives every buyer of its own batch its answer
// and returns: nobody waits for more than the call carrying its buy, and,
// when the store's calls are all out, for one of them to end. A leader that
// waited for that takes into its call the buys that queued meanwhile.
type reserveQueue struct {
	mu      sync.Mutex
	busy    bool     // a call is in flight; its leader will hand off
	waiting []*buyer // buys that arrived meanwhile, in order
}

// buyer is one buy in a reserve call.
type buyer struct {
	user  int64
	order string
	wire  []byte
	at    time.Time

	batch []*buyer      // set when this buyer leads a call: its buyers, itself first
	res   ReserveResult // the answer, set by the leader before done
	err   error
	done  chan struct{} // signalled once: the answer is set, or batch is
}

// Reserve runs reserve.lua on a shard for one buyer: wire is the
// reservation's wire form. Concurrent buys of the same shard share calls
// (see reserveQueue); each gets the answer the script gave it.
func (s *Store) Reserve(ctx context.Context, item int64, shard int, userID int64, orderID string, wire []byte, now time.Time) (ReserveResult, error) {
	k := s.keysOf(item, shard)
	me := &buyer{user: userID, order: orderID, wire: wire, at: now}
	if !k.queue.join(ctx, me) {
		return ReserveResult{}, fmt.Errorf("reserve: %w", ctx.Err())
	}
	if me.batch == nil {
		return me.res, me.err // a follower: the leader answered
	}
	// The call runs under the leader's context: the leader came first, so
	// with the same timeout for everyone no buyer of the batch waits for
	// its answer past its own deadline.
	var value []byte
	if s.callTurn(ctx) {
		// The buys that queued while the leader waited for its turn go
		// in its call.
		me.batch = k.queue.extend(me.batch)
		value = s.reserveCall(ctx, k, me.batch)
		s.callDone()
	} else {
		for _, b := range me.batch {
			b.err = fmt.Errorf("reserve: %w", ctx.Err()) // nothing was sent
		}
	}
	if next := k.queue.handOff(); next != nil {
		next.done <- struct{}{}
	}
	s.announceCall(ctx, me.batch, value)
	for _, b := range me.batch[1:] {
		b.done <- struct{}{}
	}
	return me.res, me.err
}

// join queues b behind the call in flight, if any, and returns once b has
// its answer or leads a call (b.batch set). It returns false, with b out of
// the queue and nothing sent for it, when ctx ends while b waits for a call.
func (q *reserveQueue) join(ctx context.Context, b *buyer) bool {
	q.mu.Lock()
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		b.batch = []*buyer{b}
		return true
	}
	b.done = make(chan struct{}, 1)
	q.waiting = append(q.waiting, b)
	q.mu.Unlock()
	select {
	case <-b.done:
		return true
	case <-ctx.Done():
	}
	q.mu.Lock()
	for i, w := range q.waiting {
		if w == b {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			q.mu.Unlock()
			return false
		}
	}
	q.mu.Unlock()
	// Already taken into a call: its answer, or the lead, is coming, and
	// the call is bounded by its own leader's context.
	<-b.done
	return true
}

// handOff ends a leader's turn: the waiting buys (up to maxBatch) become
// the next call's batch, led by the first of them, returned to be woken;
// nil when nobody waits, and then the next buy goes at once.
func (q *reserveQueue) handOff() *buyer {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.busy = false
		return nil
	}
	batch := q.takeWaiting(maxBatch)
	batch[0].batch = batch
	return batch[0]
}

// takeWaiting removes the first n waiting buys (fewer when fewer wait) from
// the queue and returns them, in order; q.mu is held.
func (q *reserveQueue) takeWaiting(n int) []*buyer {
	n = max(0, min(n, len(q.waiting)))
	taken := q.waiting[:n:n]
	if n == len(q.waiting) {
		q.waiting = nil
	} else {
		q.waiting = append([]*buyer(nil), q.waiting[n:]...)
	}
	return taken
}

// callTurn waits until the store may send one more reserve call (see
// maxCallsInFlight); false when ctx ends first. A call that got its turn ends
// it with callDone.
func (s *Store) callTurn(ctx context.Context) bool {
	if s.calls == nil {
		return true
	}
	select {
	case s.calls <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// callDone ends the turn of a call that callTurn let go.
func (s *Store) callDone() {
	if s.calls != nil {
		<-s.calls
	}
}

// extend adds to a leader's batch, once its call can go, the buys that
// queued meanwhile, up to maxBatch in all.
func (q *reserveQueue) extend(batch []*buyer) []*buyer {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append(batch, q.takeWaiting(maxBatch-len(batch))...)
}

// reserveCall runs reserve.lua for batch and sets each buyer's answer. An
// error (the fence, the network) is every buyer's: the script changed
// nothing, or, when its reply was lost, maybe took their units. It returns
// the entry's value the call sent for the case where every buyer takes a
// unit (see entryOf).
func (s *Store) reserveCall(ctx context.Context, k *shardKeys, batch []*buyer) []byte {
	keys := []string{k.stock, k.buyers, k.outbox, k.ep}
	field, value := entryOf(batch)
	args := make([]string, 5, 5+2*len(batch))
	args[0] = strconv.FormatInt(batch[0].at.UnixMilli(), 10)
	args[3], args[4] = field, string(value)
	for _, b := range batch {
		args = append(args, strconv.FormatInt(b.user, 10), b.order)
	}
	res, err := parseReserve(s.exec(ctx, s.reserve, keys, args), len(batch))
	for i, b := range batch {
		if err != nil {
			b.err = err
		} else if len(res) != len(batch) {
			b.err = fmt.Errorf("reserve: %d answers for %d buyers", len(res), len(batch))
		} else {
			b.res = res[i]
		}
	}
	return value
}

// entryOf is the outbox entry of a reserve call in which every buyer of
// batch takes a unit, as reserve.lua writes it (flashgate.ParseEntry): the
// order ids joined by spaces, and the wire forms joined by newlines. The
// caller sends both, so that the script, in the usual case, writes them as
// they are. The value of a batch of one is its buyer's wire buffer.
func entryOf(batch []*buyer) (field string, value []byte) {
	if len(batch) == 1 {
		return batch[0].order, batch[0].wire
	}
	var f strings.Builder
	n := len(batch) - 1
	for _, b := range batch {
		n += len(b.wire)
	}
	value = make([]byte, 0, n)
	for i, b := range batch {
		if i > 0 {
			f.WriteByte(' ')
			value = append(value, '\n')
		}
		f.WriteString(b.order)
		value = append(value, b.wire...)
	}
	return f.String(), value
}

// An Announcer hands to Kafka the outbox entry of a reserve call that took
// units: value is the entry's value (flashgate.ParseEntry), the Kafka
// message, and key flashgate.EntryKey of its first order id. The call's
// leader calls it once, after the next call started and before any buyer of
// the call gets its answer; its error is every taken buyer's Unannounced.
// For a call of one buyer, value is that buyer's wire buffer (the one passed
// to Buy or Reserve): an Announcer that keeps value past its return (a
// producer's queue) needs callers that do not reuse that buffer, as the
// gateway's do.
type Announcer func(ctx context.Context, key, value []byte) error

// Announce sets the function that hands each reserve call's entry to Kafka
// (the gateway's producer). Until it is set (tools, tests), entries wait in
// the outbox for the relay.
func (s *Store) Announce(a Announcer) { s.announce.Store(&a) }

// announceCall hands the entry of a call to Kafka: the reservations the
// call took, in the order the script wrote them (buyers answered Reserved,
// not Earlier), joined as reserve.lua joined them. value is the entry
// reserveCall sent for the case where every buyer takes a unit.
func (s *Store) announceCall(ctx context.Context, batch []*buyer, value []byte) {
	if s.announce.Load() == nil {
		return
	}
	var took []*buyer
	for _, b := range batch {
		if b.err == nil && b.res.Outcome == Reserved && !b.res.Earlier {
			took = append(took, b)
		}
	}
	if len(took) == 0 {
		return
	}
	if len(took) < len(batch) {
		_, value = entryOf(took)
	}
	err := s.announceValue(ctx, took[0].order, value)
	for _, b := range took {
		b.res.Unannounced = err
	}
}

// announceValue hands an entry's value to the Announcer, keyed by the order
// id of its first reservation, first; nil without an Announcer.
func (s *Store) announceValue(ctx context.Context, first string, value []byte) error {
	a := s.announce.Load()
	if a == nil {
		return nil
	}
	return (*a)(ctx, flashgate.EntryKey(first), value)
}

// CreditReserve runs reserve.lua on the user's home shard with a transfer:
// it credits transfer xferID (once) and reserves the user's unit in the same
// step. A borrow is rare, and is not coalesced: its call carries only its
// own buyer.
func (s *Store) CreditReserve(ctx context.Context, item int64, shard int, xferID string, units int64, userID int64, orderID string, wire []byte, now time.Time) (ReserveResult, error) {
	k := s.keysOf(item, shard)
	keys := []string{k.stock, k.buyers, k.outbox, k.base + "xin", k.ep}
	args := []string{strconv.FormatInt(now.UnixMilli(), 10), xferID, strconv.FormatInt(units, 10),
		orderID, string(wire), strconv.FormatInt(userID, 10), orderID}
	res, err := parseReserve(s.exec(ctx, s.reserve, keys, args), 1)
	if err != nil {
		return ReserveResult{}, err
	}
	if len(res) != 1 {
		return ReserveResult{}, fmt.Errorf("reserve: %d answers for 1 buyer", len(res))
	}
	r := res[0]
	if r.Outcome == Reserved && !r.Earlier { // the call's entry is this buyer's wire
		r.Unannounced = s.announceValue(ctx, orderID, wire)
	}
	return r, nil
}

// reservedEarlier is the script's code for a buyer whose mark held its order
// already: Reserved, Earlier.
const reservedEarlier ReserveOutcome = 4

// parseReserve reads the script's reply to a call of buyers buyers: the
// units left after the last of them when each took a unit, else two
// entries per buyer.
func parseReserve(reply rueidis.RedisResult, buyers int) ([]ReserveResult, error) {
	msg, err := reply.ToMessage()
	if err != nil {
		return nil, fmt.Errorf("reserve: %w", fenced(err))
	}
	if msg.IsInt64() {
		left, _ := msg.AsInt64()
		out := make([]ReserveResult, buyers)
		for i := range out {
			out[i] = ReserveResult{Outcome: Reserved, Left: left + int64(buyers-1-i)}
		}
		return out, nil
	}
	vals, err := msg.ToArray()
	if err != nil {
		return nil, fmt.Errorf("reserve: reply: %w", err)
	}
	if len(vals) == 0 || len(vals)%2 != 0 {
		return nil, errors.New("reserve: malformed reply")
	}
	out := make([]ReserveResult, len(vals)/2)
	for i := range out {
		code, err := vals[2*i].AsInt64()
		if err != nil {
			return nil, fmt.Errorf("reserve: reply: %w", err)
		}
		r := ReserveResult{Outcome: ReserveOutcome(code)}
		switch r.Outcome {
		case Reserved:
			r.Left, _ = vals[2*i+1].AsInt64()
		case reservedEarlier:
			r.Outcome, r.Earlier = Reserved, true
			r.Left, _ = vals[2*i+1].AsInt64()
		case DuplicateBuyer:
			r.OrderID, _ = vals[2*i+1].ToString()
		case ShardEmpty, ShardNotLoaded:
		default:
			return nil, fmt.Errorf("reserve: unknown reply code %d", code)
		}
		out[i] = r
	}
	return out, nil
}
