-- take: move units out of a donor shard towards another shard of the item.
-- The transfer is logged under its id in the donor until the target has been
-- credited (credit.lua) and the log entry removed; a reconciler credits the
-- entries that stay too long. Replaying a take with the same id takes nothing
-- more and answers what the first take took.
-- KEYS[1] stock   string: units left in the donor shard
-- KEYS[2] xout    hash: transfer id -> "target:units:ms"
-- KEYS[3] ep      hash: the fence (fence.lua is prefixed)
-- ARGV[1] transfer id, ARGV[2] target shard, ARGV[3] units wanted (0: half of
-- what is left, rounded up), ARGV[4] now (unix ms)
-- Reply: {taken, left}: units taken (0 when the donor is empty), units left
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
local logged = redis.call('HGET', KEYS[2], ARGV[1])
if logged then
  local _, _, k = string.find(logged, '^[^:]*:([^:]*):')
  return {tonumber(k), tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then
  return {0, 0}
end
local k = tonumber(ARGV[3])
if k <= 0 then
  k = math.ceil(n / 2)
end
if k > n then
  k = n
end
redis.call('DECRBY', KEYS[1], k)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. k .. ':' .. ARGV[4])
return {k, n - k}
