-- relay: one step of a relay pass over a shard's outbox. The outbox holds
-- only orders not yet in MySQL (settle.lua removes the others), so the relay
-- walks it (HSCAN, a cursor the worker keeps between calls and passes) and
-- answers the entries that are due: created before the cutoff, which the
-- order id tells (its first 10 characters are its creation millisecond, so
-- ids sort by age: flashgate.OrderIDsBefore), and not answered by any relay
-- in the last period. Each entry it answers is stamped now in the relayed
-- hash, so that it waits a full period before it is answered again, whichever
-- worker asks; that hash holds only relayed entries, settle.lua removes
-- their stamps, and it expires a period after its last write (its stamps
-- are then all older than a period, meaningless). An id that does not read
-- as flashgate's, or whose time is more than a period ahead, counts as due.
-- Gateways before 2026-12 also recorded each entry in a list (queue) or,
-- before 2026-11, a sorted set (pending); every entry is in the outbox
-- anyway, so those are dropped here, and cannot grow while such gateways
-- still run during an upgrade.
-- KEYS[1] outbox   hash: order id -> reservation wire form
-- KEYS[2] relayed  hash: order id -> ms when a relay last answered it
-- KEYS[3] queue, KEYS[4] pending: the old gateways' records, dropped
-- ARGV[1] the scan cursor ("0": from the start), ARGV[2] the scan's COUNT
-- ARGV[3] OrderIDsBefore(cutoff): ids sorting before it are due
-- ARGV[4] OrderIDsBefore(now + period): ids from there on are due too
-- ARGV[5] cutoff (unix ms): stamps before it are a period old
-- ARGV[6] now (unix ms), ARGV[7] the period (ms)
-- Reply: the next cursor ("0": the scan is complete), then the wire forms of
-- the entries due
redis.call('UNLINK', KEYS[3], KEYS[4])
local scan = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local reply = {scan[1]}
local entries = scan[2]
local ids, wires = {}, {}
for i = 1, #entries, 2 do
  local id = entries[i]
  if id < ARGV[3] or id >= ARGV[4] or string.byte(id, 27) ~= 45 then
    ids[#ids + 1], wires[#wires + 1] = id, entries[i + 1]
  end
end
if #ids == 0 then
  return reply
end
local stamps = redis.call('HMGET', KEYS[2], unpack(ids))
local cutoff = tonumber(ARGV[5])
local stamp = {}
for i = 1, #ids do
  if not stamps[i] or tonumber(stamps[i]) < cutoff then
    reply[#reply + 1] = wires[i]
    stamp[#stamp + 1], stamp[#stamp + 2] = ids[i], ARGV[6]
  end
end
if #stamp > 0 then
  redis.call('HSET', KEYS[2], unpack(stamp))
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
return reply
