package redis

import (
	"context"

	"github.com/redis/rueidis"
)

// RelayTake runs relay.lua on a shard's queue and outbox (tests).
func (s *Store) RelayTake(ctx context.Context, item int64, shard int, args ...string) rueidis.RedisResult {
	k := s.keysOf(item, shard)
	return s.exec(ctx, s.relay, []string{k.queue, k.outbox}, args)
}
