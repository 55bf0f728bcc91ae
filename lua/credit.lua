-- credit: add the units of a transfer to the target shard, once per transfer id.
-- KEYS[1] stock   string: units left in the target shard
-- KEYS[2] xin     zset: transfer id -> ms when credited (trimmed after an hour
--                 once the transfer is no longer logged in its donor)
-- KEYS[3] ep      hash: the fence (fence.lua is prefixed)
-- ARGV[1] transfer id, ARGV[2] units, ARGV[3] now (unix ms)
-- Reply: 1 credited, 0 already credited before (nothing changed)
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
if redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1]) == 0 then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[2])
return 1
