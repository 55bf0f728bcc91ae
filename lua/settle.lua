-- settle: drop outbox entries whose orders are committed in MySQL, and the
-- relay's stamps of those that were relayed (rare: the hash usually does not
-- exist, and then this is one EXISTS).
-- KEYS[1] outbox   hash: order ids -> reservations (reserve.lua)
-- KEYS[2] relayed  hash: outbox field -> ms when a relay last answered it
-- ARGV    outbox fields (flashgate.EntryField), any number: they are passed
--         to HDEL in chunks, as Lua's unpack fails past about 8,000 values.
-- Reply: the number of outbox entries removed
local n = 0
local stamped = redis.call('EXISTS', KEYS[2]) == 1
for i = 1, #ARGV, 1000 do
  local j = math.min(i + 999, #ARGV)
  n = n + redis.call('HDEL', KEYS[1], unpack(ARGV, i, j))
  if stamped then
    redis.call('HDEL', KEYS[2], unpack(ARGV, i, j))
  end
end
return n
