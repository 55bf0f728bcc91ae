-- settle: drop outbox entries whose orders are committed in MySQL. Their
-- entries in the relay's queue stay: the relay drops them when it reaches
-- them and finds no outbox entry (relay.lua), which costs less than finding
-- them in the queue now.
-- KEYS[1] outbox   hash: order id -> reservation wire form
-- KEYS[2] pending  zset: order id -> ms, where gateways before the queue
--                  (2026-11) recorded outbox entries; ZREM of a missing key
--                  costs nothing
-- ARGV    order ids, any number: they are passed to HDEL and ZREM in chunks,
--         as Lua's unpack fails past about 8,000 values.
-- Reply: the number of outbox entries removed
local n = 0
for i = 1, #ARGV, 1000 do
  local j = math.min(i + 999, #ARGV)
  n = n + redis.call('HDEL', KEYS[1], unpack(ARGV, i, j))
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, j))
end
return n
