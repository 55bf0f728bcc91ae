package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
)

// itemMeta is the JSON stored at <prefix>:item:<id>.
type itemMeta struct {
	ID             int64  `json:"id"`
	ActivityID     int64  `json:"activity_id"`
	Name           string `json:"name"`
	Price          int64  `json:"price_cents"`
	Points         int64  `json:"points"`
	Stock          int64  `json:"stock"`
	Shards         int    `json:"shards"`
	RequirePath    bool   `json:"require_path"`
	RequireCaptcha bool   `json:"require_captcha,omitempty"`
	StartMS        int64  `json:"start_ms"`
	EndMS          int64  `json:"end_ms"`
}

// PutItem writes the metadata of a published item and registers it. Gateways
// learn of the change through client-side caching invalidation.
func (s *Store) PutItem(ctx context.Context, it *flashgate.Item) error {
	set, add, err := s.putItemCmds(it)
	if err != nil {
		return err
	}
	for _, r := range s.c.DoMulti(ctx, set, add) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("store item %d: %w", it.ID, err)
		}
	}
	return nil
}

func (s *Store) putItemCmds(it *flashgate.Item) (set, add rueidis.Completed, err error) {
	b, err := json.Marshal(itemMeta{
		ID: it.ID, ActivityID: it.ActivityID, Name: it.Name, Price: int64(it.Price),
		Points: it.Points, Stock: it.Stock, Shards: it.Shards, RequirePath: it.RequirePath, RequireCaptcha: it.RequireCaptcha,
		StartMS: it.StartAt.UnixMilli(), EndMS: it.EndAt.UnixMilli(),
	})
	if err != nil {
		return set, add, fmt.Errorf("encode item %d: %w", it.ID, err)
	}
	return s.c.B().Set().Key(s.itemKey(it.ID)).Value(string(b)).Build(),
		s.c.B().Sadd().Key(s.itemsKey()).Member(strconv.FormatInt(it.ID, 10)).Build(), nil
}

// PublishedItems returns the ids of every published item.
func (s *Store) PublishedItems(ctx context.Context) ([]int64, error) {
	ms, err := s.c.Do(ctx, s.c.B().Smembers().Key(s.itemsKey()).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	ids := make([]int64, 0, len(ms))
	for _, m := range ms {
		if id, err := strconv.ParseInt(m, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// SetSoldOut sets or clears an item's sold-out flag. Every gateway's cached
// state is invalidated by Redis.
func (s *Store) SetSoldOut(ctx context.Context, item int64, soldOut bool) error {
	cmd := s.c.B().Del().Key(s.soldOutKey(item)).Build()
	if soldOut {
		cmd = s.c.B().Set().Key(s.soldOutKey(item)).Value("1").Build()
	}
	if err := s.c.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("set sold out of item %d: %w", item, err)
	}
	return nil
}

// SoldOut reports the sold-out flag as stored, without the cache.
func (s *Store) SoldOut(ctx context.Context, item int64) (bool, error) {
	n, err := s.c.Do(ctx, s.c.B().Exists().Key(s.soldOutKey(item)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("read sold out of item %d: %w", item, err)
	}
	return n == 1, nil
}

// CachedItem is an item as a gateway holds it in memory.
type CachedItem struct {
	flashgate.Item
	// Missing is true for an id that names no published item.
	Missing bool
	// SoldOut is the item's sold-out flag.
	SoldOut bool
	// holders maps the users holding a unit of a sold-out item to their
	// orders, so that a holder who tries again is told duplicate, with the
	// order, from memory (see Holder).
	holders map[int64]string

	until int64 // unix ns after which the entry is fetched again
	// empty has a bit per shard this process saw empty: a hint for picking
	// donors, never a decision by itself.
	empty [4]atomic.Uint64
	// soldOut is set once a buy in this process confirmed every shard
	// empty and raised the flag: concurrent buys holding this entry then
	// answer sold out at once, as buys that read the flag do, instead of
	// each rereading every shard (400 buyers of 60 units took ~13 round
	// trips each, and under load the last ones ran past their deadline).
	soldOut atomic.Bool

	remaining   atomic.Int64
	remainingAt atomic.Int64
}

// Holder returns the order of userID when the item is sold out and the user
// holds one of its units. It allocates nothing.
func (c *CachedItem) Holder(userID int64) (string, bool) {
	order, ok := c.holders[userID]
	return order, ok
}

// maxHolders bounds the buyers a gateway keeps in memory for a sold-out
// item: a flash sale's stock is small, and past this a holder's retry is
// answered sold_out instead of duplicate.
const maxHolders = 200_000

// holders reads every shard's buyer marks in one round trip.
func (s *Store) holders(ctx context.Context, item int64, shards int) (map[int64]string, error) {
	cmds := make(rueidis.Commands, 0, shards)
	for sh := 0; sh < shards; sh++ {
		cmds = append(cmds, s.c.B().Hgetall().Key(s.shardKey(item, sh, "buyers")).Build())
	}
	out := map[int64]string{}
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		m, err := r.AsStrMap()
		if err != nil {
			return nil, fmt.Errorf("read buyers of item %d: %w", item, err)
		}
		for user, order := range m {
			if id, err := strconv.ParseInt(user, 10, 64); err == nil {
				out[id] = order
			}
		}
	}
	return out, nil
}

func (c *CachedItem) markEmpty(shard int, empty bool) {
	w, bit := &c.empty[shard/64], uint64(1)<<(shard%64)
	for {
		old := w.Load()
		nw := old &^ bit
		if empty {
			nw = old | bit
		}
		if old == nw || w.CompareAndSwap(old, nw) {
			return
		}
	}
}

func (c *CachedItem) knownEmpty(shard int) bool {
	return c.empty[shard/64].Load()&(1<<(shard%64)) != 0
}

// ItemCache holds the state of items in memory. An entry is filled from
// Redis with client-side caching (DoMultiCache) and dropped the moment Redis
// pushes an invalidation of one of its keys, so that answering for a known
// item costs no I/O.
//
// A refill is single-flight per item: the requests that find an item's
// entry missing or expired while a refill of it is running wait for that
// one instead of reading Redis themselves, so that the moment an item sells
// out (its flag changes, every gateway drops the entry, and every request
// wants it) costs each process one read, not one per request. The buyer
// marks of a sold-out item are read once per process and kept across
// refills while the item stays sold out.
type ItemCache struct {
	s   *Store
	ttl time.Duration
	m   atomic.Pointer[map[int64]*CachedItem]

	mu      sync.Mutex // serialises writers of m, and guards flights and holders
	flights map[int64]*flight
	holders map[int64]map[int64]string
}

// flight is one refill of an item in progress.
type flight struct {
	done chan struct{}
	it   *CachedItem
	err  error
	// stale is set when an invalidation of the item arrived during the
	// refill: what it read may be older than the change, so it is answered
	// to the requests that waited for it but not kept.
	stale bool
}

// maxCachedItems is the size past which unknown ids are no longer cached
// (a flood of made-up ids must not grow the map without bound).
const maxCachedItems = 10000

// uncachedTTL is how long an entry read without client-side caching (see
// fetch) is trusted: no invalidation will come for it.
const uncachedTTL = 500 * time.Millisecond

func newItemCache(s *Store, ttl time.Duration) *ItemCache {
	c := &ItemCache{s: s, ttl: ttl, flights: map[int64]*flight{}, holders: map[int64]map[int64]string{}}
	c.m.Store(&map[int64]*CachedItem{})
	return c
}

// Get returns the item's state, from memory when it is there.
func (c *ItemCache) Get(ctx context.Context, id int64, now time.Time) (*CachedItem, error) {
	if it := (*c.m.Load())[id]; it != nil && now.UnixNano() < it.until {
		return it, nil
	}
	c.mu.Lock()
	if it := (*c.m.Load())[id]; it != nil && now.UnixNano() < it.until {
		c.mu.Unlock()
		return it, nil
	}
	if f := c.flights[id]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.it, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("read item %d: %w", id, ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[id] = f
	c.mu.Unlock()

	f.it, f.err = c.fetch(ctx, id, now)

	c.mu.Lock()
	if c.flights[id] == f {
		delete(c.flights, id)
	}
	if f.err == nil && !f.stale {
		c.keep(id, f.it, now)
	}
	c.mu.Unlock()
	close(f.done)
	return f.it, f.err
}

// keep stores a refilled entry; c.mu is held.
func (c *ItemCache) keep(id int64, it *CachedItem, now time.Time) {
	if it.SoldOut && it.holders != nil {
		c.holders[id] = it.holders
	} else {
		delete(c.holders, id)
	}
	old := *c.m.Load()
	if len(old) >= maxCachedItems && it.Missing {
		return
	}
	m := make(map[int64]*CachedItem, len(old)+1)
	for k, v := range old {
		if now.UnixNano() < v.until {
			m[k] = v
		}
	}
	m[id] = it
	c.m.Store(&m)
}

func (c *ItemCache) fetch(ctx context.Context, id int64, now time.Time) (*CachedItem, error) {
	s := c.s
	ttl := c.ttl
	res := s.c.DoMultiCache(ctx,
		rueidis.CT(s.c.B().Get().Key(s.itemKey(id)).Cache(), c.ttl),
		rueidis.CT(s.c.B().Get().Key(s.soldOutKey(id)).Cache(), c.ttl),
	)
	if IsOOM(res[0].Error()) || IsOOM(res[1].Error()) {
		// A full Redis (maxmemory, noeviction) refuses the MULTI that
		// client-side caching wraps its reads in, but still answers plain
		// reads: read without tracking, and trust the answer briefly, as
		// no invalidation will come for it.
		res = s.c.DoMulti(ctx,
			s.c.B().Get().Key(s.itemKey(id)).Build(),
			s.c.B().Get().Key(s.soldOutKey(id)).Build(),
		)
		ttl = min(ttl, uncachedTTL)
	}
	it := &CachedItem{until: now.Add(ttl).UnixNano()}
	meta, err := res[0].ToString()
	switch {
	case rueidis.IsRedisNil(err):
		it.Missing = true
	case err != nil:
		return nil, fmt.Errorf("read item %d: %w", id, err)
	default:
		var m itemMeta
		if err := json.Unmarshal([]byte(meta), &m); err != nil {
			return nil, fmt.Errorf("decode item %d: %w", id, err)
		}
		it.Item = flashgate.Item{
			ID: m.ID, ActivityID: m.ActivityID, Name: m.Name, Price: flashgate.Money(m.Price),
			Points: m.Points, Stock: m.Stock, Shards: m.Shards, RequirePath: m.RequirePath, RequireCaptcha: m.RequireCaptcha,
			StartAt: time.UnixMilli(m.StartMS).UTC(), EndAt: time.UnixMilli(m.EndMS).UTC(),
		}
		if it.Shards < 1 || it.Shards > 256 {
			return nil, fmt.Errorf("decode item %d: %d shards", id, it.Shards)
		}
	}
	so, err := res[1].ToString()
	switch {
	case rueidis.IsRedisNil(err):
	case err != nil:
		return nil, fmt.Errorf("read item %d: %w", id, err)
	default:
		it.SoldOut = so == "1"
	}
	if it.SoldOut && !it.Missing && it.Stock <= maxHolders {
		c.mu.Lock()
		h, ok := c.holders[id]
		c.mu.Unlock()
		if !ok {
			// Read once per sold-out spell (keep stores them): no unit
			// can be taken while every shard is empty, so the marks stay
			// as they are until a unit comes back, which clears the flag
			// and, with its invalidation, this copy.
			if h, err = c.s.holders(ctx, id, it.Shards); err != nil {
				return nil, err
			}
		}
		it.holders = h
	}
	return it, nil
}

// IsOOM reports whether err is Redis refusing a command for lack of memory
// (maxmemory reached under the noeviction policy).
func IsOOM(err error) bool {
	var re *rueidis.RedisError
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "OOM")
}

// invalidate is rueidis's OnInvalidations hook: it drops the entries whose
// keys changed, or every entry when keys is nil (a reconnect flushed the
// client-side cache), and marks the refills of those items in progress as
// stale.
func (c *ItemCache) invalidate(keys []rueidis.RedisMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if keys == nil {
		for id, f := range c.flights {
			f.stale = true
			delete(c.flights, id)
		}
		clear(c.holders)
		c.m.Store(&map[int64]*CachedItem{})
		return
	}
	old := *c.m.Load()
	var drop []int64
	prefix := c.s.prefix + ":item:"
	for _, k := range keys {
		key, err := k.ToString()
		if err != nil || !strings.HasPrefix(key, prefix) {
			continue
		}
		idPart, _, _ := strings.Cut(key[len(prefix):], ":")
		id, err := strconv.ParseInt(idPart, 10, 64)
		if err != nil {
			continue
		}
		if f := c.flights[id]; f != nil {
			f.stale = true
			delete(c.flights, id)
		}
		delete(c.holders, id)
		if _, ok := old[id]; ok {
			drop = append(drop, id)
		}
	}
	if len(drop) == 0 {
		return
	}
	m := make(map[int64]*CachedItem, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, id := range drop {
		delete(m, id)
	}
	c.m.Store(&m)
}

// Remaining returns the units left in the item's shards plus units in
// transfer between them, read at most once a second per process.
func (s *Store) Remaining(ctx context.Context, it *CachedItem, now time.Time) (int64, error) {
	if at := it.remainingAt.Load(); at != 0 && now.UnixNano()-at < int64(time.Second) {
		return it.remaining.Load(), nil
	}
	n, err := s.RemainingNow(ctx, it.ID, it.Shards)
	if err != nil {
		return 0, err
	}
	it.remaining.Store(n)
	it.remainingAt.Store(now.UnixNano())
	return n, nil
}

// RemainingNow sums the item's shards and the units in transfer, uncached.
func (s *Store) RemainingNow(ctx context.Context, item int64, shards int) (int64, error) {
	stock, transit, err := s.shardCounts(ctx, item, shards)
	if err != nil {
		return 0, err
	}
	var n int64
	for i := range stock {
		n += stock[i] + transit[i]
	}
	return n, nil
}

// shardCounts reads, in one round trip, each shard's stock and the units it
// has sent out in transfers not yet acknowledged.
func (s *Store) shardCounts(ctx context.Context, item int64, shards int) (stock, transit []int64, err error) {
	cmds := make(rueidis.Commands, 0, 2*shards)
	for i := 0; i < shards; i++ {
		cmds = append(cmds,
			s.c.B().Get().Key(s.shardKey(item, i, "stock")).Build(),
			s.c.B().Hvals().Key(s.shardKey(item, i, "xout")).Build())
	}
	res := s.c.DoMulti(ctx, cmds...)
	stock, transit = make([]int64, shards), make([]int64, shards)
	for i := 0; i < shards; i++ {
		v, err := res[2*i].AsInt64()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, nil, fmt.Errorf("read stock of item %d: %w", item, err)
		}
		stock[i] = v
		logs, err := res[2*i+1].AsStrSlice()
		if err != nil {
			return nil, nil, fmt.Errorf("read transfers of item %d: %w", item, err)
		}
		for _, l := range logs {
			if x, ok := parseTransfer(l); ok {
				transit[i] += x.Units
			}
		}
	}
	return stock, transit, nil
}

// Transfer is an entry of a donor shard's transfer log.
type Transfer struct {
	ID      string
	From    int
	To      int
	Units   int64
	TakenAt time.Time
}

func parseTransfer(v string) (Transfer, bool) {
	f := strings.Split(v, ":")
	if len(f) != 3 {
		return Transfer{}, false
	}
	to, err1 := strconv.Atoi(f[0])
	k, err2 := strconv.ParseInt(f[1], 10, 64)
	ms, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Transfer{}, false
	}
	return Transfer{To: to, Units: k, TakenAt: time.UnixMilli(ms)}, true
}

// Transfers returns the unsettled transfers out of a shard.
func (s *Store) Transfers(ctx context.Context, item int64, shard int) ([]Transfer, error) {
	m, err := s.c.Do(ctx, s.c.B().Hgetall().Key(s.shardKey(item, shard, "xout")).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("read transfers of item %d shard %d: %w", item, shard, err)
	}
	out := make([]Transfer, 0, len(m))
	for id, v := range m {
		if x, ok := parseTransfer(v); ok {
			x.ID, x.From = id, shard
			out = append(out, x)
		}
	}
	return out, nil
}

// TrimCredits forgets the transfer ids credited to a shard before cutoff,
// except those in keep: the transfers still logged in a donor shard, which
// the reconciler may credit again and whose record must then still be there.
func (s *Store) TrimCredits(ctx context.Context, item int64, shard int, cutoff time.Time, keep map[string]bool) error {
	key := s.shardKey(item, shard, "xin")
	max := strconv.FormatInt(cutoff.UnixMilli(), 10)
	if len(keep) == 0 {
		if err := s.c.Do(ctx, s.c.B().Zremrangebyscore().Key(key).Min("-inf").Max(max).Build()).Error(); err != nil {
			return fmt.Errorf("trim credits: %w", err)
		}
		return nil
	}
	ids, err := s.c.Do(ctx, s.c.B().Zrange().Key(key).Min("-inf").Max(max).Byscore().Build()).AsStrSlice()
	if err != nil {
		return fmt.Errorf("trim credits: %w", err)
	}
	old := ids[:0]
	for _, id := range ids {
		if !keep[id] {
			old = append(old, id)
		}
	}
	if len(old) == 0 {
		return nil
	}
	if err := s.c.Do(ctx, s.c.B().Zrem().Key(key).Member(old...).Build()).Error(); err != nil {
		return fmt.Errorf("trim credits: %w", err)
	}
	return nil
}

func newTransferID() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
}

// DropItem deletes every key of an item: its metadata, sold-out flag and
// all its shards. Publish calls it for items that MySQL says are not
// published yet, whose keys can only be leftovers (a database reset under
// a Redis that kept its data, or a publish whose commit failed).
func (s *Store) DropItem(ctx context.Context, item int64, shards int) error {
	keys := []string{s.itemKey(item), s.soldOutKey(item)}
	for sh := 0; sh < shards; sh++ {
		for _, name := range shardKeyNames {
			keys = append(keys, s.shardKey(item, sh, name))
		}
	}
	cmds := make(rueidis.Commands, 0, len(keys)+1)
	for _, k := range keys { // one key a command: shards live in different slots
		cmds = append(cmds, s.c.B().Del().Key(k).Build())
	}
	cmds = append(cmds, s.c.B().Srem().Key(s.itemsKey()).Member(strconv.FormatInt(item, 10)).Build())
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("drop item %d: %w", item, err)
		}
	}
	return nil
}

// HideItem deletes an item's metadata so that gateways stop selling it.
func (s *Store) HideItem(ctx context.Context, item int64) error {
	if err := s.c.Do(ctx, s.c.B().Del().Key(s.itemKey(item)).Build()).Error(); err != nil {
		return fmt.Errorf("hide item %d: %w", item, err)
	}
	return nil
}

// FlushPrefix deletes every key under the prefix (dev mode does this when it
// creates a fresh database, so that nothing of an older one lingers).
func (s *Store) FlushPrefix(ctx context.Context) error {
	for _, node := range s.c.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(s.prefix+":*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return fmt.Errorf("flush prefix: %w", err)
			}
			for _, k := range e.Elements {
				if err := s.c.Do(ctx, s.c.B().Del().Key(k).Build()).Error(); err != nil {
					return fmt.Errorf("flush prefix: %w", err)
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}
