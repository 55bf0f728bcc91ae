-- relay: take the due head of a shard's relay queue. The worker reads the
-- queue's head (LRANGE), picks the leading elements older than its cutoff,
-- and passes them here; the script checks that the head is still what the
-- worker read (another worker may have taken it meanwhile: then it does
-- nothing), removes them, and answers the outbox entries of those orders
-- that are still unsettled. Those go back to the queue's tail stamped now,
-- so that each waits a full period before it is relayed again; the others
-- were settled and are gone for good. Elements are only appended at the tail
-- (reserve.lua, this script) and removed at the head (this script), so an
-- unchanged first and last element mean an unchanged head.
-- KEYS[1] queue   list: "<ms> <order id>"
-- KEYS[2] outbox  hash: order id -> reservation wire form
-- ARGV[1] now (unix ms), ARGV[2] the first element read, ARGV[3] the last
-- element taken, ARGV[4..] the order ids of the elements taken, in order
-- Reply: the wire forms of the unsettled orders taken, or false when the
-- head changed (nothing done)
local n = #ARGV - 3
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] or redis.call('LINDEX', KEYS[1], n - 1) ~= ARGV[3] then
  return false
end
redis.call('LTRIM', KEYS[1], n, -1)
local out, back = {}, {}
for i = 4, #ARGV, 1000 do
  local j = math.min(i + 999, #ARGV)
  local vals = redis.call('HMGET', KEYS[2], unpack(ARGV, i, j))
  for k, v in ipairs(vals) do
    if v then
      out[#out + 1] = v
      back[#back + 1] = ARGV[1] .. ' ' .. ARGV[i + k - 1]
    end
  end
end
for i = 1, #back, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(back, i, math.min(i + 999, #back)))
end
return out
