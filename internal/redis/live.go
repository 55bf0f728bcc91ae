package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/rueidis"
)

// The answers of the buy endpoint, counted by every gateway in memory and
// added here once a second, so that the admin's live view sees the whole
// fleet: one hash per item and second,
//
//	<prefix>:{live:42}:1764460800   code -> answers in that second
//
// kept for AnswerKeep seconds. The item's buckets share a hash tag: the
// admin reads a minute of them from one node in one round trip.

// AnswerKeep is how many seconds of answer counts Redis keeps.
const AnswerKeep = 180

func (s *Store) answersKey(item, sec int64) string {
	return s.prefix + ":{live:" + strconv.FormatInt(item, 10) + "}:" + strconv.FormatInt(sec, 10)
}

// AnswerCount is what one gateway adds for an item, a code and a second.
type AnswerCount struct {
	Item  int64
	Sec   int64 // unix seconds
	Code  string
	Delta int64
}

// AddAnswers adds counts to their buckets, in one pipelined round trip.
func (s *Store) AddAnswers(ctx context.Context, counts []AnswerCount) error {
	if len(counts) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, 2*len(counts))
	for _, c := range counts {
		k := s.answersKey(c.Item, c.Sec)
		cmds = append(cmds,
			s.c.B().Hincrby().Key(k).Field(c.Code).Increment(c.Delta).Build(),
			s.c.B().Expire().Key(k).Seconds(AnswerKeep).Build())
	}
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("add answer counts: %w", err)
		}
	}
	return nil
}

// Answers returns the answer counts of an item for the seconds from..to
// (inclusive), oldest first, in one round trip.
func (s *Store) Answers(ctx context.Context, item, from, to int64) ([]map[string]int64, error) {
	if to < from {
		return nil, nil
	}
	cmds := make(rueidis.Commands, 0, to-from+1)
	for sec := from; sec <= to; sec++ {
		cmds = append(cmds, s.c.B().Hgetall().Key(s.answersKey(item, sec)).Build())
	}
	out := make([]map[string]int64, 0, len(cmds))
	for _, r := range s.c.DoMulti(ctx, cmds...) {
		m, err := r.AsIntMap()
		if err != nil {
			return nil, fmt.Errorf("read answer counts of item %d: %w", item, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ShardRemaining reads, in one round trip, each shard's stock and the units
// it has sent out in transfers not yet settled (they are still the item's).
func (s *Store) ShardRemaining(ctx context.Context, item int64, shards int) (stock, inTransfer []int64, err error) {
	return s.shardCounts(ctx, item, shards)
}
