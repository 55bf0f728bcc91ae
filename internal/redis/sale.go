package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/rueidis"

	"github.com/flashgate/flashgate"
)

// pipelineChunk bounds the commands sent in one DoMulti: a publish of 200
// items × 64 shards is many small commands in a few pipelines, each of
// which Redis interleaves with the gateways' scripts, never one long
// script that would hold Redis while buyers wait.
const pipelineChunk = 512

// doChunked sends cmds in pipelines of pipelineChunk and returns the first
// error.
func (s *Store) doChunked(ctx context.Context, what string, cmds rueidis.Commands) error {
	for len(cmds) > 0 {
		n := min(len(cmds), pipelineChunk)
		for _, r := range s.c.DoMulti(ctx, cmds[:n]...) {
			if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		cmds = cmds[n:]
	}
	return nil
}

// ShardShare returns shard's share of units split over n shards: units/n,
// plus one for the first units%n shards.
func ShardShare(units int64, n, shard int) int64 {
	share := units / int64(n)
	if int64(shard) < units%int64(n) {
		share++
	}
	return share
}

// LoadStock replaces every key of items (unpublished items, whose keys can
// only be leftovers) by fresh shards holding their stock, in pipelines.
// It writes no metadata: the items stay invisible to gateways until
// PutItems.
func (s *Store) LoadStock(ctx context.Context, items []flashgate.Item) error {
	var cmds rueidis.Commands
	var loads []rueidis.LuaExec
	for i := range items {
		it := &items[i]
		cmds = append(cmds, s.c.B().Del().Key(s.itemKey(it.ID)).Build(), s.c.B().Del().Key(s.soldOutKey(it.ID)).Build(),
			s.c.B().Srem().Key(s.itemsKey()).Member(strconv.FormatInt(it.ID, 10)).Build())
		for sh := 0; sh < it.Shards; sh++ {
			cmds = append(cmds, s.delShard(it.ID, sh))
			loads = append(loads, rueidis.LuaExec{Keys: []string{s.shardKey(it.ID, sh, "stock"), s.shardKey(it.ID, sh, "ep")},
				Args: []string{strconv.FormatInt(ShardShare(it.Stock, it.Shards, sh), 10)}})
		}
	}
	if err := s.doChunked(ctx, "clear leftover keys", cmds); err != nil {
		return err
	}
	for len(loads) > 0 {
		n := min(len(loads), pipelineChunk)
		for _, r := range s.preload.ExecMulti(ctx, s.c, loads[:n]...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("preload stock: %w", err)
			}
		}
		loads = loads[n:]
	}
	return nil
}

// shardKeyNames are the keys every shard of an item may have.
var shardKeyNames = []string{"stock", "buyers", "outbox", "relayed", "queue", "pending", "xout", "xin", "adj", "ep"}

// delShard deletes every key of a shard in one command: they share a hash
// tag, so one slot.
func (s *Store) delShard(item int64, shard int) rueidis.Completed {
	keys := make([]string, len(shardKeyNames))
	for i, name := range shardKeyNames {
		keys[i] = s.shardKey(item, shard, name)
	}
	return s.c.B().Del().Key(keys...).Build()
}

// PutItems writes the metadata of published items (PutItem for each, in
// pipelines). Rewriting an item's metadata is also how a change of its
// window reaches the gateways: the write invalidates their cached copies.
func (s *Store) PutItems(ctx context.Context, items []flashgate.Item) error {
	var cmds rueidis.Commands
	for i := range items {
		set, add, err := s.putItemCmds(&items[i])
		if err != nil {
			return err
		}
		cmds = append(cmds, set, add)
	}
	return s.doChunked(ctx, "store items", cmds)
}

// MissingItems returns those of ids whose metadata is not in Redis.
func (s *Store) MissingItems(ctx context.Context, ids []int64) ([]int64, error) {
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = s.c.B().Exists().Key(s.itemKey(id)).Build()
	}
	var out []int64
	for i, r := range s.c.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, fmt.Errorf("check items: %w", err)
		}
		if n == 0 {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// DropItems deletes every key of items and forgets them (archive): after it
// no background job visits them.
func (s *Store) DropItems(ctx context.Context, items []flashgate.Item) error {
	var cmds rueidis.Commands
	for i := range items {
		it := &items[i]
		cmds = append(cmds, s.c.B().Srem().Key(s.itemsKey()).Member(strconv.FormatInt(it.ID, 10)).Build(),
			s.c.B().Del().Key(s.itemKey(it.ID)).Build(), s.c.B().Del().Key(s.soldOutKey(it.ID)).Build())
		for sh := 0; sh < it.Shards; sh++ {
			cmds = append(cmds, s.delShard(it.ID, sh))
		}
	}
	return s.doChunked(ctx, "drop items", cmds)
}

// ShardCount is one shard's numbers read atomically (count.lua).
type ShardCount struct {
	Stock    int64    // units left
	Transfer int64    // units sent out in transfers not yet settled
	Outbox   []string // orders reserved whose rows may not exist yet
}

// Counts reads every shard of an item with count.lua, in one pipeline.
func (s *Store) Counts(ctx context.Context, item int64, shards int) ([]ShardCount, error) {
	execs := make([]rueidis.LuaExec, shards)
	for sh := range execs {
		execs[sh] = rueidis.LuaExec{Keys: []string{s.shardKey(item, sh, "stock"), s.shardKey(item, sh, "xout"), s.shardKey(item, sh, "outbox")}}
	}
	out := make([]ShardCount, shards)
	for sh, r := range s.count.ExecMulti(ctx, s.c, execs...) {
		if e, ok := rueidis.IsRedisErr(r.Error()); ok && e.IsTryAgain() {
			r = s.exec(ctx, s.count, execs[sh].Keys, nil) // its slot is migrating: wait it out
		}
		vals, err := r.ToArray()
		if err != nil || len(vals) < 2 {
			return nil, fmt.Errorf("count item %d shard %d: %v", item, sh, orReply(err))
		}
		out[sh].Stock, _ = vals[0].AsInt64()
		out[sh].Transfer, _ = vals[1].AsInt64()
		for _, v := range vals[2:] {
			field, _ := v.ToString()
			out[sh].Outbox = append(out[sh].Outbox, flashgate.EntryIDs(field)...)
		}
	}
	return out, nil
}

// Withdraw runs withdraw.lua on a shard: it takes up to want units not yet
// sold, once per adjustment id, and returns what this adjustment took there.
func (s *Store) Withdraw(ctx context.Context, item int64, shard int, adjID string, want int64) (taken int64, err error) {
	keys := []string{s.shardKey(item, shard, "stock"), s.shardKey(item, shard, "adj"), s.shardKey(item, shard, "ep")}
	vals, err := s.exec(ctx, s.withdraw, keys, []string{adjID, strconv.FormatInt(want, 10)}).AsIntSlice()
	if err != nil || len(vals) != 2 {
		return 0, fmt.Errorf("withdraw from item %d shard %d: %w", item, shard, fenced(orReply(err)))
	}
	return vals[0], nil
}
