package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
)

// BuyResult is the outcome of Buy.
type BuyResult struct {
	Outcome ReserveOutcome // Reserved, DuplicateBuyer or ShardEmpty (sold out)
	OrderID string         // the new order, or the one the user holds
	Shard   int
	// Wire is the reservation's wire form as written to the outbox, built
	// in the buffer passed to Buy: the Kafka message of a new order.
	Wire []byte
}

// maxAttempts bounds the borrowing rounds of one buy. Each round either
// borrows (and then the buyer gets a unit: see reserve.lua), learns
// that a donor is empty, or rereads every shard, so the bound is reached
// only under heavy contention for the very last units.
const maxAttempts = 64

// ErrBusy is returned by Buy when units remain but the buyer could not get
// one in maxAttempts rounds: nothing was taken, the buyer may retry.
var ErrBusy = errors.New("buy: stock is moving between shards; try again")

// Buy reserves one unit of it for the reservation r on the user's home shard,
// writing r's wire form into wire's buffer.
// When that shard is empty it borrows from another shard (take in the donor,
// then credit and reserve in the home shard in one script, then ack) so that
// a buyer never loses borrowed units to others; it answers ShardEmpty only
// when every shard reads empty twice with nothing in transfer, and then
// raises the item's sold-out flag. r.Shard is set to the home shard.
func (s *Store) Buy(ctx context.Context, it *CachedItem, r *flashgate.Reservation, wire []byte) (BuyResult, error) {
	home := flashgate.HomeShard(r.UserID, it.Shards)
	r.Shard = home
	wire = r.AppendWire(wire[:0])
	res, err := s.Reserve(ctx, r.ItemID, home, r.UserID, r.OrderID, wire, r.At)
	confirmed := 0
	for attempt := 0; ; attempt++ {
		if err != nil {
			return BuyResult{}, err
		}
		switch res.Outcome {
		case Reserved:
			if res.Left == 0 {
				it.markEmpty(home, true)
			}
			return BuyResult{Outcome: Reserved, OrderID: r.OrderID, Shard: home, Wire: wire}, nil
		case DuplicateBuyer:
			return BuyResult{Outcome: DuplicateBuyer, OrderID: res.OrderID, Shard: home, Wire: wire}, nil
		case ShardNotLoaded:
			return BuyResult{}, fmt.Errorf("reserve: stock of item %d shard %d is not loaded", r.ItemID, home)
		}
		it.markEmpty(home, true)
		if it.soldOut.Load() {
			return BuyResult{Outcome: ShardEmpty, Shard: home}, nil
		}
		if it.Shards == 1 {
			return BuyResult{Outcome: ShardEmpty, Shard: home}, s.maybeSoldOut(ctx, it)
		}
		if attempt >= maxAttempts {
			return BuyResult{}, ErrBusy
		}
		if donor := s.pickDonor(it, home); donor >= 0 {
			res, err = s.borrow(ctx, it, donor, home, r, wire)
			continue
		}
		// Every shard looks empty from here: read them all before
		// believing it, since other processes move stock around.
		// found gets an error of its own: a := here would shadow err, and
		// a failed Reserve below would then read as Reserved (the zero
		// outcome) at the top of the loop.
		found, ferr := s.refreshEmpty(ctx, it)
		if ferr != nil {
			return BuyResult{}, ferr
		}
		if !found {
			if confirmed++; confirmed >= 2 {
				return BuyResult{Outcome: ShardEmpty, Shard: home}, s.maybeSoldOut(ctx, it)
			}
			time.Sleep(2 * time.Millisecond)
		}
		res, err = s.Reserve(ctx, r.ItemID, home, r.UserID, r.OrderID, wire, r.At)
	}
}

// pickDonor returns a shard other than home not known to be empty, starting
// at a random one so that concurrent borrowers spread, or -1.
func (s *Store) pickDonor(it *CachedItem, home int) int {
	start := rand.IntN(it.Shards)
	for i := 0; i < it.Shards; i++ {
		sh := (start + i) % it.Shards
		if sh != home && !it.knownEmpty(sh) {
			return sh
		}
	}
	return -1
}

// borrow moves half of donor's units to home for r's buyer: take (logged in
// the donor), credit and reserve in home (once per transfer id), then ack
// (drop the log entry). If the process dies in between, or the ack fails,
// the reconciler finishes the transfer. When the donor is empty it answers
// ShardEmpty.
func (s *Store) borrow(ctx context.Context, it *CachedItem, donor, home int, r *flashgate.Reservation, wire []byte) (ReserveResult, error) {
	id := newTransferID()
	now := time.Now()
	taken, left, err := s.Take(ctx, it.ID, donor, home, id, 0, now)
	if err != nil {
		return ReserveResult{}, err
	}
	if left == 0 {
		it.markEmpty(donor, true)
	}
	if taken == 0 {
		return ReserveResult{Outcome: ShardEmpty}, nil
	}
	res, err := s.CreditReserve(ctx, it.ID, home, id, taken, r.UserID, r.OrderID, wire, r.At)
	if err != nil {
		return ReserveResult{}, err
	}
	it.markEmpty(home, res.Outcome == Reserved && res.Left == 0)
	if err := s.Ack(ctx, it.ID, donor, id); err != nil {
		// The transfer is credited and the buyer's unit reserved: the ack
		// only drops the donor's log entry, which the reconciler does
		// when it finds the entry old (crediting nothing twice). Failing
		// the buy here would answer 503 for a unit that is taken.
		s.log.Warn("ack transfer; the reconciler will finish it", "item", it.ID, "shard", donor, "err", err)
	}
	return res, nil
}

// refreshEmpty rereads every shard and resets the hints; it reports whether
// any unit is left or in transfer.
func (s *Store) refreshEmpty(ctx context.Context, it *CachedItem) (bool, error) {
	stock, transit, err := s.shardCounts(ctx, it.ID, it.Shards)
	if err != nil {
		return false, err
	}
	found := false
	for i := range stock {
		it.markEmpty(i, stock[i] <= 0)
		if stock[i] > 0 || transit[i] > 0 {
			found = true
		}
	}
	return found, nil
}

// maybeSoldOut raises the sold-out flag after rereading the shards, unless
// units are left or it is raised already.
func (s *Store) maybeSoldOut(ctx context.Context, it *CachedItem) error {
	if it.SoldOut {
		return nil
	}
	found, err := s.refreshEmpty(ctx, it)
	if err != nil || found {
		return err
	}
	if err := s.SetSoldOut(ctx, it.ID, true); err != nil {
		return err
	}
	it.soldOut.Store(true)
	return nil
}

// PendingOrder returns the reservation of a pending order from the outbox of
// the user's home shard, or false.
func (s *Store) PendingOrder(ctx context.Context, it *CachedItem, userID int64, orderID string) (flashgate.Reservation, bool, error) {
	shard := flashgate.HomeShard(userID, it.Shards)
	v, err := s.c.Do(ctx, s.c.B().Hget().Key(s.shardKey(it.ID, shard, "outbox")).Field(orderID).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return flashgate.Reservation{}, false, nil
	}
	if err != nil {
		return flashgate.Reservation{}, false, fmt.Errorf("read outbox: %w", err)
	}
	r, err := flashgate.ParseReservation(v)
	if err != nil || r.UserID != userID {
		return flashgate.Reservation{}, false, err
	}
	return r, true, nil
}

// Relay queue passes: Stale reads the queue's head scanChunk elements at a
// time, and at most scanRounds chunks a call, so that one call is bounded
// even when a worker comes back to a long queue (the next call goes on).
const (
	scanChunk  = 2000
	scanRounds = 50
)

// Stale returns up to limit outbox entries (about: a round may go past it)
// of a shard that entered the outbox before cutoff and are still there, and
// queues them again stamped now, so that they wait another full period
// before being returned again. On the way it drops from the queue the
// entries of settled orders, which settle leaves there.
func (s *Store) Stale(ctx context.Context, item int64, shard int, cutoff time.Time, limit int) ([][]byte, error) {
	k := s.keysOf(item, shard)
	// The pass stops at the queue's length at its start: what is appended
	// meanwhile (new entries, and those this pass queues again) waits for
	// the next.
	left, err := s.c.Do(ctx, s.c.B().Llen().Key(k.relayQueue).Build()).AsInt64()
	if err != nil {
		return nil, fmt.Errorf("read relay queue: %w", err)
	}
	var out [][]byte
	for round := 0; round < scanRounds && left > 0 && len(out) < limit; round++ {
		head, err := s.c.Do(ctx, s.c.B().Lrange().Key(k.relayQueue).Start(0).Stop(min(left, scanChunk)-1).Build()).AsStrSlice()
		if err != nil {
			return out, fmt.Errorf("read relay queue: %w", err)
		}
		due := dueHead(head, cutoff.UnixMilli())
		if due == 0 {
			break
		}
		args := make([]string, 0, 3+due)
		args = append(args, strconv.FormatInt(time.Now().UnixMilli(), 10), head[0], head[due-1])
		for _, e := range head[:due] {
			_, id, _ := strings.Cut(e, " ")
			args = append(args, id)
		}
		res := s.exec(ctx, s.relay, []string{k.relayQueue, k.outbox}, args)
		if rueidis.IsRedisNil(res.Error()) {
			break // another worker took this head: it relays these
		}
		vals, err := res.ToArray()
		if err != nil {
			return out, fmt.Errorf("take relay queue: %w", err)
		}
		for _, v := range vals {
			if b, err := v.AsBytes(); err == nil {
				out = append(out, b)
			}
		}
		if due < len(head) {
			break // reached an entry not yet due
		}
		left -= int64(due)
	}
	legacy, err := s.staleLegacy(ctx, item, shard, cutoff, int64(max(limit-len(out), 1)))
	return append(out, legacy...), err
}

// dueHead returns how many leading elements of a relay queue's head entered
// it at or before cutoff (unix ms). An element that does not parse counts as
// due: it is taken, and dropped unless an outbox entry has its id.
func dueHead(head []string, cutoff int64) int {
	for i, e := range head {
		ms, _, ok := strings.Cut(e, " ")
		if t, err := strconv.ParseInt(ms, 10, 64); ok && err == nil && t > cutoff {
			return i
		}
	}
	return len(head)
}

// staleLegacy is Stale over the zset in which gateways before the relay
// queue (2026-11) recorded outbox entries: entries reserved by such a
// gateway during an upgrade are relayed from there. It is one ZRANGE of a
// missing key a shard and pass once they are gone.
func (s *Store) staleLegacy(ctx context.Context, item int64, shard int, cutoff time.Time, limit int64) ([][]byte, error) {
	pending := s.shardKey(item, shard, "pending")
	ids, err := s.c.Do(ctx, s.c.B().Zrange().Key(pending).Min("-inf").Max(strconv.FormatInt(cutoff.UnixMilli(), 10)).Byscore().Limit(0, limit).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("read pending: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := s.c.Do(ctx, s.c.B().Hmget().Key(s.shardKey(item, shard, "outbox")).Field(ids...).Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	now := float64(time.Now().UnixMilli())
	out := make([][]byte, 0, len(ids))
	var orphans []string
	cmd := s.c.B().Zadd().Key(pending).Xx().ScoreMember()
	for i, v := range vals {
		b, err := v.AsBytes()
		if err != nil {
			orphans = append(orphans, ids[i]) // settled between the two reads
			continue
		}
		out = append(out, b)
		cmd = cmd.ScoreMember(now, ids[i])
	}
	if len(out) > 0 {
		if err := s.c.Do(ctx, cmd.Build()).Error(); err != nil {
			return nil, fmt.Errorf("mark pending: %w", err)
		}
	}
	if len(orphans) > 0 {
		if err := s.c.Do(ctx, s.c.B().Zrem().Key(pending).Member(orphans...).Build()).Error(); err != nil {
			return nil, fmt.Errorf("drop orphans: %w", err)
		}
	}
	return out, nil
}

// OutboxIDs returns the order ids in a shard's outbox.
func (s *Store) OutboxIDs(ctx context.Context, item int64, shard int) ([]string, error) {
	ids, err := s.c.Do(ctx, s.c.B().Hkeys().Key(s.shardKey(item, shard, "outbox")).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return ids, nil
}
