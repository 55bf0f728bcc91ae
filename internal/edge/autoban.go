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
// them within one window is banned for a while through the BanStore, so
// that every gateway answers them 403 instead. Counting happens in this
// process only, so with several gateways a user is banned once one gateway
// alone has seen threshold 429s.
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

// strike is one 429 answered to a user.
type strike struct {
	userID int64
	at     int64 // unix nanoseconds
}

// strikeCount is Run's state for one user.
type strikeCount struct {
	start int64 // unix nanoseconds: the first 429 of the current window
	n     int
	quiet int64 // unix nanoseconds: banned, ignore 429s until then
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

// Run counts the recorded 429s and bans, until ctx is done. It forgets
// users whose window has passed once per window, so memory follows the
// number of users rate-limited recently. Bans are stored from this
// goroutine: while Redis is slow, 429s wait in the queue, never in Record.
func (a *AutoBanner) Run(ctx context.Context) {
	if !a.on() {
		return
	}
	counts := make(map[int64]strikeCount)
	prune := time.NewTicker(max(a.window, time.Second))
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-a.strikes:
			a.count(ctx, counts, s)
		case now := <-prune.C:
			a.prune(counts, now.UnixNano())
		}
	}
}

// count adds one strike and bans its user when it reaches the threshold.
func (a *AutoBanner) count(ctx context.Context, counts map[int64]strikeCount, s strike) {
	c := counts[s.userID]
	if s.at < c.quiet {
		return // banned just now; gateways start answering 403 within a second
	}
	if c.n == 0 || s.at-c.start >= int64(a.window) {
		c = strikeCount{start: s.at}
	}
	c.n++
	if c.n >= a.threshold {
		reason := fmt.Sprintf("auto: %d rate-limited requests within %s", c.n, a.window)
		err := a.store.Ban(ctx, Ban{UserID: s.userID, TTL: a.banFor, Reason: reason})
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			// Count afresh: the next threshold 429s try again.
			a.logger.Warn("auto-ban failed", "user_id", s.userID, "err", err)
			c = strikeCount{}
		default:
			a.logger.Info("auto-banned", "user_id", s.userID, "for", a.banFor, "reason", reason)
			// Not again for one window: the 429s still on their way are
			// not a reason to ban twice.
			c = strikeCount{quiet: s.at + int64(a.window)}
		}
	}
	counts[s.userID] = c
}

// prune forgets users with neither a current window nor a quiet period.
func (a *AutoBanner) prune(counts map[int64]strikeCount, now int64) {
	for id, c := range counts {
		if now-c.start >= int64(a.window) && now >= c.quiet {
			delete(counts, id)
		}
	}
}
