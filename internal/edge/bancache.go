package edge

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

const (
	// banReloadEvery is the safety net under the change messages: a gateway
	// that missed one (it was reconnecting) still applies the change within
	// this long.
	banReloadEvery = time.Second

	// Bounds of the wait before subscribing again after losing the channel.
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 5 * time.Second
)

// BanCache is one gateway's copy of the ban list, answered from memory. Run
// keeps it current: it reloads the whole list whenever a change is published
// and at least every second. Expiry needs no reload: lookups compare the
// expiry with the time they are given.
//
// Until the first load, and while Redis is unreachable at start, nobody is
// banned: the cache fails open, as a ban list should not take the sale down.
// Once loaded, it keeps its last copy through Redis outages.
type BanCache struct {
	store  *BanStore
	logger *slog.Logger

	snap       atomic.Pointer[banSnapshot]
	subscribed atomic.Bool   // the change channel is subscribed right now
	reload     chan struct{} // a pending reload; capacity 1, so bursts coalesce
	ready      chan struct{} // closed by the first load after subscribing
	readyOnce  sync.Once
}

// banSnapshot is an immutable copy of the ban list: expiries in unix
// milliseconds by user and by address, 0 for never.
type banSnapshot struct {
	users map[int64]int64
	ips   map[netip.Addr]int64
}

// NewBanCache returns a cache of store's ban list. It is empty until Run has
// loaded it. A nil logger discards.
func NewBanCache(store *BanStore, logger *slog.Logger) *BanCache {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &BanCache{
		store:  store,
		logger: logger,
		reload: make(chan struct{}, 1),
		ready:  make(chan struct{}),
	}
}

// Ready is closed once the cache has subscribed to changes and then loaded
// the list: from then on no ban is missed. A gateway may hold its readiness
// until then.
func (c *BanCache) Ready() <-chan struct{} {
	return c.ready
}

// UserBanned reports whether user id is banned at now. Lock-free, no
// allocation.
func (c *BanCache) UserBanned(id int64, now time.Time) bool {
	s := c.snap.Load()
	if s == nil {
		return false
	}
	exp, ok := s.users[id]
	return ok && (exp == 0 || now.UnixMilli() < exp)
}

// IPBanned reports whether addr is banned at now: an IPv4 address, or the
// /64 of an IPv6 address (see ClientNet); an IPv4-mapped address is the
// IPv4 address. Lock-free, no allocation.
func (c *BanCache) IPBanned(addr netip.Addr, now time.Time) bool {
	s := c.snap.Load()
	if s == nil || len(s.ips) == 0 {
		return false
	}
	exp, ok := s.ips[ClientNet(addr)]
	return ok && (exp == 0 || now.UnixMilli() < exp)
}

// Run loads the ban list, subscribes to its changes and keeps the copy
// current until ctx is done. Call it once per cache. Failures are logged and retried; Run returns
// only when ctx is done, after its subscriber goroutine has stopped.
func (c *BanCache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.subscribe(ctx) })
	defer wg.Wait()

	tick := time.NewTicker(banReloadEvery)
	defer tick.Stop()
	failing := false
	for {
		failing = c.load(ctx, failing)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.reload:
		}
	}
}

// load replaces the snapshot with the list as it is in Redis now and
// reports whether that failed. It logs when loading starts failing and when
// it recovers, not at every attempt.
func (c *BanCache) load(ctx context.Context, failing bool) bool {
	subscribed := c.subscribed.Load() // before reading: changes from now on are announced
	m, err := c.store.fetch(ctx)
	if err != nil {
		if ctx.Err() == nil && !failing {
			c.logger.Warn("ban list reload failing, keeping the last copy", "err", err)
		}
		return true
	}
	if failing {
		c.logger.Info("ban list reload recovered")
	}
	now := time.Now().UnixMilli()
	s := &banSnapshot{users: make(map[int64]int64), ips: make(map[netip.Addr]int64)}
	for field, value := range m {
		e, ok := parseBan(field, value)
		if !ok || e.expired(now) {
			continue
		}
		if e.userID != 0 {
			s.users[e.userID] = e.exp
		} else {
			s.ips[e.addr] = e.exp
		}
	}
	c.snap.Store(s)
	if subscribed {
		c.readyOnce.Do(func() { close(c.ready) })
	}
	return false
}

// subscribe listens to the change channel until ctx is done, asking for a
// reload at every message and at every (re)subscription, since messages
// sent while unsubscribed are lost.
func (c *BanCache) subscribe(ctx context.Context) {
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		// Runs on rueidis's connection goroutine: nothing here may block.
		if s.Kind == "subscribe" {
			c.subscribed.Store(true)
			c.poke()
		}
	})
	client := c.store.client
	sub := client.B().Subscribe().Channel(c.store.channel).Build()
	wait := resubscribeMin
	for {
		err := client.Receive(hooked, sub, func(rueidis.PubSubMessage) { c.poke() })
		wasSubscribed := c.subscribed.Swap(false)
		if ctx.Err() != nil {
			return
		}
		if wasSubscribed {
			wait = resubscribeMin
		}
		c.logger.Warn("ban list subscription lost, retrying",
			"channel", c.store.channel, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, resubscribeMax)
	}
}

// poke asks Run for a reload without waiting: one pending request covers
// any number of changes.
func (c *BanCache) poke() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}
