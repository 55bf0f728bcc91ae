-- withdraw: take up to n units of a shard out of the sale (an operator's
-- stock withdrawal), only units not yet taken by a buyer. Logged under the
-- adjustment's id, so that a retry of the same adjustment (after a crash)
-- takes nothing more and answers what the first run took.
-- KEYS[1] stock  string: units left in the shard
-- KEYS[2] adj    hash: adjustment id -> units this shard gave to it
-- KEYS[3] ep     hash: the fence (fence.lua is prefixed)
-- ARGV[1] adjustment id, ARGV[2] units wanted (> 0)
-- Reply: {taken, left}: units taken by this adjustment, units left
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
local logged = redis.call('HGET', KEYS[2], ARGV[1])
if logged then
  return {tonumber(logged), tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local k = tonumber(ARGV[2])
if k > n then
  k = n
end
if k < 0 then
  k = 0
end
if k > 0 then
  redis.call('DECRBY', KEYS[1], k)
end
redis.call('HSET', KEYS[2], ARGV[1], k)
return {k, n - k}
