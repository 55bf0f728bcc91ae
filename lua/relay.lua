-- relay: answer the outbox entries that a relay found due, each once a
-- period whichever worker asks. The worker walks a shard's outbox (HSCAN,
-- internal/redis Store.Stale) and passes here the fields of the entries
-- whose first order was made before its cutoff (the id tells:
-- flashgate.OrderIDsBefore), or whose id tells no usable time.
-- Each entry answered is stamped now in the relayed hash, so that it waits a
-- full period before it is answered again. That hash holds only relayed
-- entries, settle.lua removes their stamps, and it expires a period after
-- its last write (its stamps are then all older than a period: meaningless),
-- so stamps that nobody removed do not pile up either.
-- KEYS[1] outbox   hash: order ids -> reservations (reserve.lua)
-- KEYS[2] relayed  hash: outbox field -> ms when a relay last answered it
-- ARGV[1] cutoff (unix ms): a stamp before it is a period old
-- ARGV[2] now (unix ms), ARGV[3] the period (ms)
-- ARGV[4..] outbox fields, at most a few hundred
-- Reply: the values of those entries still in the outbox and not answered
-- since the cutoff
local wires = redis.call('HMGET', KEYS[1], unpack(ARGV, 4))
local stamps = redis.call('HMGET', KEYS[2], unpack(ARGV, 4))
local cutoff = tonumber(ARGV[1])
local reply, stamp = {}, {}
for i = 1, #ARGV - 3 do
  if wires[i] and (not stamps[i] or tonumber(stamps[i]) < cutoff) then
    reply[#reply + 1] = wires[i]
    stamp[#stamp + 1], stamp[#stamp + 2] = ARGV[i + 3], ARGV[2]
  end
end
if #stamp > 0 then
  redis.call('HSET', KEYS[2], unpack(stamp))
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return reply
