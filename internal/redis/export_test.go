package redis

import (
	"context"

	"github.com/redis/rueidis"
)

// MaxBatch is maxBatch, for the tests of coalescing.
const MaxBatch = maxBatch

// QueuedBuyers returns how many buys of a shard wait for a reserve call.
func (s *Store) QueuedBuyers(item int64, shard int) int {
	q := &s.keysOf(item, shard).queue
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

// RelayTake runs relay.lua on a shard's queue and outbox (tests).
func (s *Store) RelayTake(ctx context.Context, item int64, shard int, args ...string) rueidis.RedisResult {
	k := s.keysOf(item, shard)
	return s.exec(ctx, s.relay, []string{k.relayQueue, k.outbox}, args)
}
