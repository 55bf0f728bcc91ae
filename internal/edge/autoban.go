package edge

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

const (
	// autoBanQueue is how many 429s may wait for the auto-banner before new
	// ones are dropped. Dropping only delays a ban: an abuser keeps sending.
	autoBanQueue = 4096

	// defaultAutoBanWindow is the window NewAutoBanner uses when given none.
	defaultAutoBanWindow = time.Minute
)

// AutoBanner bans users who keep hitting the rate limit: the gateway
// records every 429 it answers a user, and a user who collects threshold of
// them within one window, on all the gateways of the fleet together, is
// banned for a while through the BanStore, so that every gateway answers
// them 403 instead.
//
// Counting is shared through Redis without a round trip per 429: Run adds
// up this gateway's 429s per user and window in memory, and every
// flushEvery adds them to the fleet's count of that user and window (one
// counter key per user and window, so Redis Cluster spreads them), and
// bans whoever the fleet's count puts at the threshold. Windows are fixed
// (aligned to multiples of the window since the Unix epoch), not sliding:
// a user may collect up to twice the threshold, less two, across the edge
// of two windows without a ban.
//
// Record never blocks: it hands the 429 to Run's goroutine through a
// bounded queue and drops it when the queue is full. A nil *AutoBanner, or
// one with a threshold of 0, records nothing.
type AutoBanner struct {
	threshold int
	window    time.Duration
	banFor    time.Duration
	store     *BanStore
	logger    *slog.Logger

	strikes chan strike
	dropped atomic.Uint64
}

// flushEvery is how often an AutoBanner adds its 429s to the fleet's
// counts: a ban comes at most this late, plus a Redis round trip.
const flushEvery = 100 * time.Millisecond

// strike is one 429 answered to a user.
type strike struct {
	userID int64
	at     int64 // unix nanoseconds
}

// strikeKey is a user's count in one window.
type strikeKey struct {
	userID int64
	window int64 // the strike's time divided by the window
}

// NewAutoBanner returns an auto-banner that bans a user for banFor (for ever
// when 0) once they have collected threshold 429s within window (one minute
// when 0 or less). A threshold of 0 or less turns it off. logger may be nil.
func NewAutoBanner(threshold int, window, banFor time.Duration, store *BanStore, logger *slog.Logger) *AutoBanner {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if window <= 0 {
		window = defaultAutoBanWindow
	}
	a := &AutoBanner{
		threshold: threshold,
		window:    window,
		banFor:    max(banFor, 0),
		store:     store,
		logger:    logger,
	}
	if a.on() {
		a.strikes = make(chan strike, autoBanQueue)
	}
	return a
}

// on reports whether the auto-banner does anything.
func (a *AutoBanner) on() bool {
	return a != nil && a.threshold > 0 && a.store != nil
}

// Record notes that userID was just answered 429, at now. It never blocks
// and allocates nothing.
func (a *AutoBanner) Record(userID int64, now time.Time) {
	if !a.on() || userID <= 0 {
		return
	}
	select {
	case a.strikes <- strike{userID: userID, at: now.UnixNano()}:
	default:
		a.dropped.Add(1)
	}
}

// Dropped is the number of 429s Record dropped because the queue was full.
func (a *AutoBanner) Dropped() uint64 {
	if a == nil {
		return 0
	}
	return a.dropped.Load()
}

// Run counts the recorded 429s and bans, until ctx is done. Counts and bans
// go to Redis from this goroutine only: while Redis is slow, 429s wait in
// the queue, never in Record. When adding to the fleet's counts fails, the
// 429s of that flush are forgotten (a ban then comes later, as an abuser
// keeps sending).
func (a *AutoBanner) Run(ctx context.Context) {
	if !a.on() {
		return
	}
	pending := make(map[strikeKey]int64) // since the last flush
	quiet := make(map[int64]int64)       // banned users: unix ns until which to ignore them
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-a.strikes:
			if s.at < quiet[s.userID] {
				continue // banned just now; gateways answer 403 within a second
			}
			pending[strikeKey{s.userID, s.at / int64(a.window)}]++
		case now := <-flush.C:
			if len(pending) > 0 {
				failing = a.flush(ctx, pending, quiet, now, failing)
				clear(pending)
			}
			for id, until := range quiet {
				if now.UnixNano() >= until {
					delete(quiet, id)
				}
			}
		}
	}
}

// flush adds pending to the fleet's counts and bans the users whose count
// reached the threshold. It reports whether adding failed, logging when
// that starts.
func (a *AutoBanner) flush(ctx context.Context, pending map[strikeKey]int64, quiet map[int64]int64, now time.Time, failing bool) bool {
	totals, err := a.store.addStrikes(ctx, pending, 2*a.window)
	if err != nil {
		if ctx.Err() == nil && !failing {
			a.logger.Warn("auto-ban counts failing; 429s are not counted meanwhile", "err", err)
		}
		return true
	}
	for k, n := range totals {
		if n < int64(a.threshold) || now.UnixNano() < quiet[k.userID] {
			continue
		}
		reason := fmt.Sprintf("auto: %d rate-limited requests within %s", n, a.window)
		err := a.store.Ban(ctx, Ban{UserID: k.userID, TTL: a.banFor, Reason: reason})
		switch {
		case err != nil && ctx.Err() != nil:
			return false
		case err != nil:
			// The next 429 of the user, counted on top, tries again.
			a.logger.Warn("auto-ban failed", "user_id", k.userID, "err", err)
		default:
			a.logger.Info("auto-banned", "user_id", k.userID, "for", a.banFor, "reason", reason)
			// Not again for one window: the 429s still on their way, here
			// and on other gateways, are not a reason to ban twice.
			quiet[k.userID] = now.Add(a.window).UnixNano()
		}
	}
	return false
}
