-- reserve: take one unit of an item's shard for a user.
-- Prefixed with fence.lua.
-- KEYS[1] stock    string: units left in the shard
-- KEYS[2] buyers   hash: user id -> order id (the duplicate mark)
-- KEYS[3] outbox   hash: order id -> reservation wire form
-- KEYS[4] queue    list: "<ms> <order id>" in the order entries entered the
--                  outbox, for the relay (relay.lua); appending is O(1)
-- KEYS[5] xin      optional, zset: transfer id -> ms when credited
-- KEYS[#KEYS] ep   hash: the fence (see fence.lua)
-- ARGV[1] user id, ARGV[2] order id, ARGV[3] reservation wire form, ARGV[4] now (unix ms)
-- ARGV[5] transfer id, ARGV[6] units: with KEYS[5], a buyer who borrowed
-- stock from another shard first credits the transfer here (once per id, as
-- credit.lua does), so that no one else can take the borrowed units before
-- the borrower gets one.
-- A script run twice for the same order (a caller that retried) reserves
-- once: the second run finds the user's mark holding this very order and
-- answers as the first did.
-- Reply:
--   {0, left}      reserved; left units remain in the shard
--   {1, order_id}  duplicate: the user already holds order_id on this item
--   {2}            the shard is empty (the caller may borrow from another shard)
--   {3}            the shard's stock is not loaded
--   error FENCED   the shard awaits repair (nothing changed)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {3}
end
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
if #KEYS == 6 and redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[5]) == 1 then
  redis.call('INCRBY', KEYS[1], ARGV[6])
end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then
  if prev == ARGV[2] then
    return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
  end
  return {1, prev}
end
local n = redis.call('GET', KEYS[1])
if not n then
  return {3}
end
n = tonumber(n)
if n <= 0 then
  return {2}
end
redis.call('DECR', KEYS[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('RPUSH', KEYS[4], ARGV[4] .. ' ' .. ARGV[2])
return {0, n - 1}
