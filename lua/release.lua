-- release: return the unit of a cancelled or refunded order to the user's
-- home shard and let the user buy again. Idempotent: only the order that holds
-- the user's duplicate mark is released, once.
-- KEYS[1] stock   string: units left in the shard
-- KEYS[2] buyers  hash: user id -> order id
-- KEYS[3] ep      hash: the fence (fence.lua is prefixed)
-- ARGV[1] user id, ARGV[2] order id, ARGV[3] optional: "0" clears the mark
-- without returning a unit (an order the MySQL stock guard refused: its unit
-- never existed)
-- Reply: 1 released, 0 nothing to release (already released, or the mark
-- belongs to another order)
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] ~= '0' then
  redis.call('INCR', KEYS[1])
end
return 1
