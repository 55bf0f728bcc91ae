-- preload: load a shard's share of an item's stock at publish time. A shard
-- already loaded is left untouched, so that a replayed publish never resets
-- stock that is selling. A shard loaded now is verified by this Redis
-- process (see fence.lua).
-- KEYS[1] stock  string: units left in the shard
-- KEYS[2] ep     hash: the fence
-- ARGV[1] units
-- Reply: 1 loaded, 0 already loaded
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('HSET', KEYS[2], 'run', string.match(redis.call('INFO', 'server'), 'run_id:(%w+)'))
  return 1
end
return 0
