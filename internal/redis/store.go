// Package redis wraps rueidis for flashgate: the keys, the typed calls of the
// Lua scripts in package lua, the item metadata and its client-side cache.
//
// Keys of one item shard share the hash tag {i<item>:<shard>} so that every
// script runs on one Redis Cluster slot:
//
//	<prefix>:{i42:3}:stock    units left in shard 3 of item 42
//	<prefix>:{i42:3}:buyers   user id -> order id (duplicate marks)
//	<prefix>:{i42:3}:outbox   order ids -> reservations not yet in MySQL, an entry a reserve call (flashgate.ParseEntry)
//	<prefix>:{i42:3}:relayed  outbox field -> ms when the relay last produced it (relayed entries only)
//	<prefix>:{i42:3}:queue    written by gateways before 2026-11-30 ("<ms> <order id>"); the relay drops it
//	<prefix>:{i42:3}:pending  written by gateways before 2026-11 (order id -> ms); the relay drops it
//	<prefix>:{i42:3}:xout     transfers out of the shard not yet settled
//	<prefix>:{i42:3}:xin      transfers (and stock additions) credited to the shard
//	<prefix>:{i42:3}:adj      stock withdrawals: adjustment id -> units taken
//	<prefix>:{i42:3}:ep       the fence: which Redis process verified the shard
//	<prefix>:item:42          item metadata (JSON), cached by every gateway
//	<prefix>:item:42:so       "1" while the item is sold out, cached likewise
//	<prefix>:items            ids of published items
//	<prefix>:gateways         gateway id -> ms of its last heartbeat
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate/lua"
)

// Store is flashgate's Redis. It is safe for concurrent use.
type Store struct {
	runs   liveRuns
	c      rueidis.Client
	prefix string
	log    *slog.Logger
	items  *ItemCache
	keys   keyCache

	announce atomic.Pointer[Announcer]
	// calls holds a token for each reserve call in flight, at most
	// maxCallsInFlight, on a Redis of one primary (standalone or Sentinel); nil
	// on Redis Cluster (see maxCallsInFlight).
	calls chan struct{}

	reserve, take, credit, release, preload, settle, relay *rueidis.Lua
	withdraw, count, heartbeat                             *rueidis.Lua
	probe, unfence                                         *rueidis.Lua
}

// Options configure Open.
type Options struct {
	Addrs  []string
	Prefix string
	Logger *slog.Logger
	// CacheTTL bounds how long an item's cached state is trusted without an
	// invalidation; default 10s.
	CacheTTL time.Duration
	// ConnTimeout bounds a read or write on a connection: a Redis that
	// stops answering fails the commands in flight after it, and idle
	// connections are pinged that often; default 2s.
	ConnTimeout time.Duration
	// Username and Password authenticate (an ACL user, or requirepass with
	// an empty Username); TLS, when set, encrypts every connection.
	Username string
	Password string
	TLS      *tls.Config
	// Wrap, when set, wraps the client every call goes through (tests
	// count round trips with it).
	Wrap func(rueidis.Client) rueidis.Client
}

// Open connects to Redis (a Redis Cluster when Addrs has more than one entry
// or names a cluster node) with client-side caching on.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Second
	}
	if o.ConnTimeout <= 0 {
		o.ConnTimeout = 2 * time.Second
	}
	s := &Store{
		prefix:    o.Prefix,
		log:       o.Logger,
		reserve:   rueidis.NewLuaScript(lua.Fence + lua.Reserve),
		take:      rueidis.NewLuaScript(lua.Fence + lua.Take),
		credit:    rueidis.NewLuaScript(lua.Fence + lua.Credit),
		release:   rueidis.NewLuaScript(lua.Fence + lua.Release),
		preload:   rueidis.NewLuaScript(lua.Preload),
		settle:    rueidis.NewLuaScript(lua.Settle),
		relay:     rueidis.NewLuaScript(lua.Relay),
		withdraw:  rueidis.NewLuaScript(lua.Fence + lua.Withdraw),
		count:     rueidis.NewLuaScript(lua.Count),
		heartbeat: rueidis.NewLuaScript(lua.Heartbeat),
		probe:     rueidis.NewLuaScript(lua.Fence + lua.Probe),
		unfence:   rueidis.NewLuaScript(lua.Unfence),
	}
	s.items = newItemCache(s, o.CacheTTL)
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       o.Addrs,
		OnInvalidations:   s.items.invalidate,
		CacheSizeEachConn: 16 << 20,
		ConnWriteTimeout:  o.ConnTimeout,
		// Fail fast: a buy answers 503 at once when Redis is unreachable
		// rather than retrying until its deadline.
		DisableRetry: true,
		Dialer:       netDialer(),
		DialCtxFn:    dial,
		Username:     o.Username,
		Password:     o.Password,
		TLSConfig:    o.TLS,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to redis %s: %w", strings.Join(o.Addrs, ","), err)
	}
	if c.Mode() != rueidis.ClientModeCluster {
		s.calls = make(chan struct{}, maxCallsInFlight)
	}
	if o.Wrap != nil {
		c = o.Wrap(c)
	}
	s.c = c
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() { s.c.Close() }

// Client returns the underlying client, for callers that need a command this
// package does not wrap (tests, ban lists).
func (s *Store) Client() rueidis.Client { return s.c }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Items returns the client-side cache of item state.
func (s *Store) Items() *ItemCache { return s.items }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.c.Do(ctx, s.c.B().Ping().Build()).Error()
}

// Writable checks that Redis takes writes: a Redis that answers PING may
// still refuse every write when it is full (maxmemory under noeviction), and
// then no buy can be taken. It writes a short-lived key of the prefix.
func (s *Store) Writable(ctx context.Context) error {
	return s.c.Do(ctx, s.c.B().Set().Key(s.prefix+":readyz").Value("1").Px(10*time.Second).Build()).Error()
}

func (s *Store) shardKey(item int64, shard int, name string) string {
	k := s.keysOf(item, shard)
	switch name {
	case "stock":
		return k.stock
	case "buyers":
		return k.buyers
	case "outbox":
		return k.outbox
	case "ep":
		return k.ep
	}
	return k.base + name
}

// shardKeys are the keys of one item shard, built once: the hot path would
// otherwise format four strings per buy.
type shardKeys struct {
	base                      string // "<prefix>:{i42:3}:"
	stock, buyers, outbox, ep string
	queue                     reserveQueue // the shard's buys waiting for a reserve call
}

// keyCache holds shardKeys per item; items are few and live long.
type keyCache struct {
	mu sync.RWMutex
	m  map[int64][]*shardKeys
}

// maxKeyedItems bounds the key cache; past it keys are built per call.
const maxKeyedItems = 4096

func (s *Store) keysOf(item int64, shard int) *shardKeys {
	s.keys.mu.RLock()
	ks := s.keys.m[item]
	s.keys.mu.RUnlock()
	if shard < len(ks) && ks[shard] != nil {
		return ks[shard]
	}
	b := make([]byte, 0, len(s.prefix)+32)
	b = append(b, s.prefix...)
	b = append(b, ":{i"...)
	b = strconv.AppendInt(b, item, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(shard), 10)
	b = append(b, "}:"...)
	base := string(b)
	k := &shardKeys{base: base, stock: base + "stock", buyers: base + "buyers", outbox: base + "outbox", ep: base + "ep"}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.m == nil {
		s.keys.m = map[int64][]*shardKeys{}
	}
	ks = s.keys.m[item]
	if _, known := s.keys.m[item]; !known && len(s.keys.m) >= maxKeyedItems {
		return k
	}
	if shard < len(ks) && ks[shard] != nil {
		return ks[shard]
	}
	// Copy on write: readers index the slice they got under RLock without
	// holding it, so a published slice is never written again.
	grown := make([]*shardKeys, max(len(ks), shard+1))
	copy(grown, ks)
	grown[shard] = k
	s.keys.m[item] = grown
	return k
}

func (s *Store) itemKey(item int64) string {
	return s.prefix + ":item:" + strconv.FormatInt(item, 10)
}

func (s *Store) soldOutKey(item int64) string { return s.itemKey(item) + ":so" }

func (s *Store) itemsKey() string { return s.prefix + ":items" }

// ReserveOutcome is the reply of the reserve script.
type ReserveOutcome int

// Outcomes of Reserve, in the script's reply codes.
const (
	Reserved ReserveOutcome = iota
	DuplicateBuyer
	ShardEmpty
	ShardNotLoaded
)

// ReserveResult is what Reserve did.
type ReserveResult struct {
	Outcome ReserveOutcome
	Left    int64  // units left in the shard after a reservation
	OrderID string // the order the user already holds, on DuplicateBuyer
	// Earlier is set on Reserved when the user's mark held this very order
	// already (a retry of a call that ran, or the same buy twice in one
	// call): its reservation is in the entry of the call, or the buyer,
	// that took the unit, and this buyer's answer announced nothing.
	Earlier bool
	// Unannounced is the error of handing the call's outbox entry to Kafka
	// (Store.Announce), on Reserved: the reservation waits in the outbox,
	// and the relay produces it later.
	Unannounced error
}

// Take runs take.lua on the donor shard from, logging a transfer of up to
// want units (0: half of what is left) to shard to under xferID.
func (s *Store) Take(ctx context.Context, item int64, from, to int, xferID string, want int64, now time.Time) (taken, left int64, err error) {
	keys := []string{s.shardKey(item, from, "stock"), s.shardKey(item, from, "xout"), s.shardKey(item, from, "ep")}
	args := []string{xferID, strconv.Itoa(to), strconv.FormatInt(want, 10), strconv.FormatInt(now.UnixMilli(), 10)}
	vals, err := s.exec(ctx, s.take, keys, args).AsIntSlice()
	if err != nil || len(vals) != 2 {
		return 0, 0, fmt.Errorf("take stock from shard %d: %w", from, fenced(orReply(err)))
	}
	return vals[0], vals[1], nil
}

// Credit runs credit.lua: it adds units of transfer xferID to shard, once.
func (s *Store) Credit(ctx context.Context, item int64, shard int, xferID string, units int64, now time.Time) (bool, error) {
	keys := []string{s.shardKey(item, shard, "stock"), s.shardKey(item, shard, "xin"), s.shardKey(item, shard, "ep")}
	args := []string{xferID, strconv.FormatInt(units, 10), strconv.FormatInt(now.UnixMilli(), 10)}
	n, err := s.exec(ctx, s.credit, keys, args).AsInt64()
	if err != nil {
		return false, fmt.Errorf("credit shard %d: %w", shard, fenced(err))
	}
	return n == 1, nil
}

// Ack removes a settled transfer from the donor's log.
func (s *Store) Ack(ctx context.Context, item int64, from int, xferID string) error {
	err := s.c.Do(ctx, s.c.B().Hdel().Key(s.shardKey(item, from, "xout")).Field(xferID).Build()).Error()
	if err != nil {
		return fmt.Errorf("ack transfer: %w", err)
	}
	return nil
}

// Release runs release.lua on the user's home shard: the unit of orderID goes
// back and the user may buy again. It reports whether a unit was returned.
func (s *Store) Release(ctx context.Context, item int64, shard int, userID int64, orderID string) (bool, error) {
	keys := []string{s.shardKey(item, shard, "stock"), s.shardKey(item, shard, "buyers"), s.shardKey(item, shard, "ep")}
	n, err := s.exec(ctx, s.release, keys, []string{strconv.FormatInt(userID, 10), orderID}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("release unit: %w", fenced(err))
	}
	return n == 1, nil
}

// Unmark runs release.lua without returning a unit: it clears the user's
// duplicate mark if it still names orderID, so that the user may buy again
// after the MySQL stock guard refused the order (whose unit never existed).
func (s *Store) Unmark(ctx context.Context, item int64, shard int, userID int64, orderID string) (bool, error) {
	keys := []string{s.shardKey(item, shard, "stock"), s.shardKey(item, shard, "buyers"), s.shardKey(item, shard, "ep")}
	n, err := s.exec(ctx, s.release, keys, []string{strconv.FormatInt(userID, 10), orderID, "0"}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("clear buyer mark: %w", fenced(err))
	}
	return n == 1, nil
}

// Preload runs preload.lua: it sets a shard's stock unless already loaded.
func (s *Store) Preload(ctx context.Context, item int64, shard int, units int64) (bool, error) {
	n, err := s.exec(ctx, s.preload, []string{s.shardKey(item, shard, "stock"), s.shardKey(item, shard, "ep")}, []string{strconv.FormatInt(units, 10)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("preload shard %d: %w", shard, err)
	}
	return n == 1, nil
}

// Settle runs settle.lua: it removes from a shard's outbox the entries of
// fields (flashgate.EntryField) whose orders are all written to MySQL, and
// returns how many it removed.
func (s *Store) Settle(ctx context.Context, item int64, shard int, fields []string) (int64, error) {
	if len(fields) == 0 {
		return 0, nil
	}
	keys := []string{s.shardKey(item, shard, "outbox"), s.shardKey(item, shard, "relayed")}
	n, err := s.exec(ctx, s.settle, keys, fields).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("settle outbox: %w", err)
	}
	return n, nil
}

// Bounds of exec's waits while a slot migrates.
const (
	tryAgainFirst = time.Millisecond
	tryAgainMax   = 50 * time.Millisecond
	tryAgainFor   = 5 * time.Second
)

// exec runs a script. On Redis Cluster it follows MOVED and ASK (rueidis
// does) and also retries TRYAGAIN, which rueidis leaves to the caller with
// its retries off: while a slot migrates (`redis-cli --cluster reshard`), a
// script whose keys are partly moved, or partly missing on both sides (an
// empty outbox is no key), is refused with TRYAGAIN by both nodes until the
// migration of that slot ends, a matter of milliseconds. The script did not
// run, so running it again cannot take a unit twice. Errors of any other
// kind are returned at once: a Redis that is down fails fast.
func (s *Store) exec(ctx context.Context, script *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	wait, waited := tryAgainFirst, time.Duration(0)
	reverified := false
	for {
		res := script.Exec(ctx, s.c, keys, args)
		if verified, current, ok := fencedBy(res.Error()); ok && !reverified && len(keys) > 0 && s.runs.migrated(ctx, s.c, verified, current) {
			// The shard moved here from a node that is still up: its
			// keys are as they were, not rewound. Verify it again here.
			reverified = true
			if err := s.exec(ctx, s.unfence, keys[len(keys)-1:], nil).Error(); err != nil {
				return res
			}
			continue
		}
		if e, ok := rueidis.IsRedisErr(res.Error()); !ok || !e.IsTryAgain() || waited >= tryAgainFor {
			return res
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
		waited += wait
		wait = min(2*wait, tryAgainMax)
	}
}

func orReply(err error) error {
	if err == nil {
		return errors.New("unexpected reply")
	}
	return err
}
