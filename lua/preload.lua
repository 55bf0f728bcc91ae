-- preload: load a shard's share of an item's stock at publish time. A shard
-- already loaded is left untouched, so that a replayed publish never resets
-- stock that is selling.
-- KEYS[1] stock  string: units left in the shard
-- ARGV[1] units
-- Reply: 1 loaded, 0 already loaded
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  return 1
end
return 0
