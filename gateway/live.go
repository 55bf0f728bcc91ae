package gateway

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/redis"
)

// liveCounts counts the buy answers of each item by code, in memory with
// atomics, and adds them to Redis once a second (redis.AddAnswers), so that
// the admin's live view shows the answers of the whole fleet per second
// without a Redis call per buy.
//
// An item is counted once this gateway has found it published (a buy that
// reached the item lookup); answers given before the lookup (a bad token, a
// rate limit) count from then on too, since the id is in the path.
type liveCounts struct {
	store *redis.Store
	log   *slog.Logger
	mu    sync.Mutex // serialises writers of m
	m     atomic.Pointer[map[int64]*itemCounts]
}

// itemCounts holds one counter per code of allCodes.
type itemCounts struct {
	n       [numCodes]atomic.Int64
	flushed [numCodes]int64 // owned by the flusher
	idle    int             // seconds without an answer, owned by the flusher
}

const numCodes = 13

// maxLiveItems bounds the items counted at once.
const maxLiveItems = 4096

func newLiveCounts(store *redis.Store, log *slog.Logger) *liveCounts {
	l := &liveCounts{store: store, log: log}
	l.m.Store(&map[int64]*itemCounts{})
	return l
}

// codeIndex is the position of c in allCodes, without allocating.
func codeIndex(c flashgate.Code) int {
	switch c {
	case flashgate.OK:
		return 0
	case flashgate.Invalid:
		return 1
	case flashgate.Unauthorized:
		return 2
	case flashgate.Forbidden:
		return 3
	case flashgate.NotFound:
		return 4
	case flashgate.Conflict:
		return 5
	case flashgate.Duplicate:
		return 6
	case flashgate.SoldOut:
		return 7
	case flashgate.NotStarted:
		return 8
	case flashgate.Ended:
		return 9
	case flashgate.RateLimited:
		return 10
	case flashgate.Unavailable:
		return 11
	}
	return 12
}

// count records an answer for the item of a buy's path; items not tracked
// are not counted. It allocates nothing.
func (l *liveCounts) count(rest []byte, c flashgate.Code) {
	if l == nil {
		return
	}
	id, ok := parseID(rest)
	if !ok {
		return
	}
	if ic := (*l.m.Load())[id]; ic != nil {
		ic.n[codeIndex(c)].Add(1)
	}
}

// track starts counting an item. After the first call for an item it is a
// map lookup.
func (l *liveCounts) track(id int64) {
	if l == nil || (*l.m.Load())[id] != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.m.Load()
	if old[id] != nil || len(old) >= maxLiveItems {
		return
	}
	m := make(map[int64]*itemCounts, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = &itemCounts{}
	l.m.Store(&m)
}

// run flushes the counts every second, just after the second turns, into
// the bucket of the second that ended, until ctx is done.
func (l *liveCounts) run(ctx context.Context) {
	for {
		now := time.Now()
		next := now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			l.flush(fctx, time.Now().Unix())
			cancel()
			return
		case at := <-t.C:
			fctx, cancel := context.WithTimeout(ctx, time.Second)
			l.flush(fctx, at.Unix()-1)
			cancel()
		}
	}
}

// idleAfter is how long an item without answers stays tracked.
const idleAfter = 600

// flush adds what was counted since the last flush to second sec. On a
// failure the counts stay and go with the next flush.
func (l *liveCounts) flush(ctx context.Context, sec int64) {
	m := *l.m.Load()
	var out []redis.AnswerCount
	var cur [][numCodes]int64
	var items []*itemCounts
	var idle []int64
	for id, ic := range m {
		var now [numCodes]int64
		any := false
		for i := range now {
			now[i] = ic.n[i].Load()
			if d := now[i] - ic.flushed[i]; d > 0 {
				out = append(out, redis.AnswerCount{Item: id, Sec: sec, Code: string(allCodes[i]), Delta: d})
				any = true
			}
		}
		if !any {
			if ic.idle++; ic.idle > idleAfter {
				idle = append(idle, id)
			}
			continue
		}
		ic.idle = 0
		cur = append(cur, now)
		items = append(items, ic)
	}
	if len(out) > 0 {
		if err := l.store.AddAnswers(ctx, out); err != nil {
			l.log.Warn("flush answer counts", "err", err)
			return
		}
		for i, ic := range items {
			ic.flushed = cur[i]
		}
	}
	if len(idle) > 0 {
		l.forget(idle)
	}
}

// forget stops counting items that had no answer for a while.
func (l *liveCounts) forget(ids []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.m.Load()
	m := make(map[int64]*itemCounts, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, id := range ids {
		delete(m, id)
	}
	l.m.Store(&m)
}
