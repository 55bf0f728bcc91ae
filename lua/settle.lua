-- settle: drop outbox entries whose orders are committed in MySQL.
-- KEYS[1] outbox   hash: order id -> reservation wire form
-- KEYS[2] pending  zset: order id -> ms
-- ARGV    order ids
-- Reply: the number of outbox entries removed
local n = redis.call('HDEL', KEYS[1], unpack(ARGV))
redis.call('ZREM', KEYS[2], unpack(ARGV))
return n
