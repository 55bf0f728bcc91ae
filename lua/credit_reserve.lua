-- credit_reserve: credit a transfer to the borrower's home shard and, in the
-- same step, reserve one unit there for the borrower, so that the units a
-- buyer borrowed cannot all be taken by others before the buyer gets one.
-- The credit happens once per transfer id, as in credit.lua; the reservation
-- is exactly reserve.lua's.
-- KEYS[1] stock, KEYS[2] xin, KEYS[3] buyers, KEYS[4] outbox, KEYS[5] pending
-- ARGV[1] transfer id, ARGV[2] units, ARGV[3] now (unix ms),
-- ARGV[4] user id, ARGV[5] order id, ARGV[6] reservation wire form
-- Reply: reserve.lua's reply ({0,left}, {1,order_id}, {2}, {3})
if redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1]) == 1 then
  redis.call('INCRBY', KEYS[1], ARGV[2])
end
local prev = redis.call('HGET', KEYS[3], ARGV[4])
if prev then
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
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[5])
return {0, n - 1}
