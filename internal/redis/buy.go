package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
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
	// in the buffer passed to Buy.
	Wire []byte
	// Unannounced is the error of handing the reservation to Kafka
	// (Store.Announce), on Reserved: it waits in the outbox for the relay.
	Unannounced error
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
			if res.Earlier {
				// Its entry is an earlier call's, which this buy cannot
				// tell was announced: announce the reservation alone
				// (the worker writes it once, whichever copy comes).
				res.Unannounced = s.announceValue(ctx, r.OrderID, wire)
			}
			return BuyResult{Outcome: Reserved, OrderID: r.OrderID, Shard: home, Wire: wire, Unannounced: res.Unannounced}, nil
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

// PendingOrder returns the reservation of an order that user holds in
// Redis (the buyer mark of the user's home shard names it), for a caller
// that found no row of it: every field of a reservation is known from the
// mark, the order id (its item and millisecond: the gateway makes both from
// the same time) and the item (its price is fixed once published). It reads
// the mark rather than the outbox, whose entries are named by all the order
// ids of their reserve call.
func (s *Store) PendingOrder(ctx context.Context, it *CachedItem, userID int64, orderID string) (flashgate.Reservation, bool, error) {
	itemID, ok := flashgate.OrderItem(orderID)
	ms, mok := flashgate.OrderIDMilli(orderID)
	if !ok || !mok || itemID != it.ID {
		return flashgate.Reservation{}, false, nil
	}
	shard := flashgate.HomeShard(userID, it.Shards)
	mark, err := s.c.Do(ctx, s.c.B().Hget().Key(s.shardKey(it.ID, shard, "buyers")).Field(strconv.FormatInt(userID, 10)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return flashgate.Reservation{}, false, nil
	}
	if err != nil {
		return flashgate.Reservation{}, false, fmt.Errorf("read buyer mark: %w", err)
	}
	if mark != orderID {
		return flashgate.Reservation{}, false, nil
	}
	return flashgate.Reservation{OrderID: orderID, ItemID: it.ID, UserID: userID, Amount: it.Price,
		Shard: shard, At: time.UnixMilli(ms).UTC()}, true, nil
}

// A relay pass over a shard's outbox is a series of HSCAN steps of about
// relayCount entries: Redis runs nothing else during a command, so each
// stays short (about 0.06 ms for 100 entries of ~150 bytes on the project's
// machine; an entry holds a reserve call's reservations, one at light load,
// about six at a storm's peak, 64 at most). Scanning from here rather than
// in a script costs Redis less than half as much an entry: a script would
// copy every entry into Lua.
// relayCalls bounds a pass, so that a worker that finds a long outbox
// (after an outage) spreads its walk over several passes: the cursor goes
// on.
const (
	relayCount = 100
	relayCalls = 100
)

// Stale returns the values of a shard's outbox entries whose first order
// was made more than after before now (as its id tells) and that no relay
// returned in the last period, and stamps them now (relay.lua), so that they
// wait another full period before being returned again. It walks the outbox
// from cursor (an HSCAN cursor, 0 to start) until the walk is complete, it
// has limit reservations (about: a step may go past it) or relayCalls steps
// are made, and returns the cursor to go on from: 0 once the walk went
// through the whole outbox.
// An entry that stays in the outbox through a whole walk is seen by it
// (HSCAN's guarantee), so a walk finds every entry due since before it
// started. Walks of other workers may run meanwhile: each entry is returned
// to one of them once a period (relay.lua checks and stamps in one step).
//
// The first step also drops the shard's relay queue and pending set, which
// gateways before 2026-11-30 and 2026-11 wrote for each entry: every entry is
// in the outbox, so they are of no use, and they cannot grow while such
// gateways still run during an upgrade.
func (s *Store) Stale(ctx context.Context, item int64, shard int, cursor uint64, now time.Time, after time.Duration, limit int) (wires [][]byte, next uint64, err error) {
	k := s.keysOf(item, shard)
	cutoff := now.Add(-after)
	before, ahead := flashgate.OrderIDsBefore(cutoff), flashgate.OrderIDsBefore(now.Add(after))
	args := []string{strconv.FormatInt(cutoff.UnixMilli(), 10), strconv.FormatInt(now.UnixMilli(), 10),
		strconv.FormatInt(max(after.Milliseconds(), 1), 10)}
	for call, n := 0, 0; call < relayCalls && n < limit; call++ {
		scan := s.c.B().Hscan().Key(k.outbox).Cursor(cursor).Count(relayCount).Build()
		var res rueidis.RedisResult
		if call == 0 {
			rs := s.c.DoMulti(ctx, s.c.B().Unlink().Key(k.base+"queue", k.base+"pending").Build(), scan)
			if err := rs[0].Error(); err != nil {
				return nil, cursor, fmt.Errorf("drop old relay queues: %w", err)
			}
			res = rs[1]
		} else {
			res = s.c.Do(ctx, scan)
		}
		e, err := res.AsScanEntry()
		if err != nil {
			return wires, cursor, fmt.Errorf("scan outbox of item %d shard %d: %w", item, shard, err)
		}
		due := args[:3:3] // then the fields due
		for i := 0; i+1 < len(e.Elements); i += 2 {
			if field := e.Elements[i]; relayDue(flashgate.EntryFirstID(field), before, ahead) {
				due = append(due, field)
			}
		}
		if len(due) > 3 {
			vals, err := s.exec(ctx, s.relay, []string{k.outbox, k.base + "relayed"}, due).ToArray()
			if err != nil {
				return wires, cursor, fmt.Errorf("relay outbox of item %d shard %d: %w", item, shard, err)
			}
			for _, v := range vals {
				if b, err := v.AsBytes(); err == nil {
					wires = append(wires, b)
					n += flashgate.EntryLen(b)
				}
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	return wires, cursor, nil
}

// relayDue reports whether an outbox entry is due by its first order id: made
// before the time whose OrderIDsBefore is before, or at or after ahead's (a
// clock gone wrong: it would never be due), or not an id of flashgate's,
// which tells no time.
func relayDue(id, before, ahead string) bool {
	if _, ok := flashgate.OrderItem(id); !ok {
		return true
	}
	return id < before || id >= ahead
}

// OutboxIDs returns the order ids in a shard's outbox.
func (s *Store) OutboxIDs(ctx context.Context, item int64, shard int) ([]string, error) {
	fields, err := s.c.Do(ctx, s.c.B().Hkeys().Key(s.shardKey(item, shard, "outbox")).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	var ids []string
	for _, f := range fields {
		ids = append(ids, flashgate.EntryIDs(f)...)
	}
	return ids, nil
}
