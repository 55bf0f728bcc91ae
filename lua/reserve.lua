-- reserve: take one unit of an item's shard for each of a batch of buyers,
-- in their order. Prefixed with fence.lua.
-- The gateway sends together the buys of one shard that arrive while a call
-- for that shard is in flight (internal/redis, Store.Reserve): the Lua call
-- itself costs Redis more than the commands it runs, so one call for many
-- buyers costs each of them a fraction of it.
-- KEYS[1] stock    string: units left in the shard
-- KEYS[2] buyers   hash: user id -> order id (the duplicate mark)
-- KEYS[3] outbox   hash: one entry a call that took units: the order ids
--                  taken, joined by spaces -> their wire forms, joined by
--                  newlines (flashgate.ParseEntry; the relay finds the
--                  entries left there too long: relay.lua)
-- KEYS[4] xin      optional, zset: transfer id -> ms when credited
-- KEYS[#KEYS] ep   hash: the fence (see fence.lua)
-- ARGV[1] now (unix ms): when a transfer is credited
-- ARGV[2] transfer id, ARGV[3] units: with KEYS[4], a buyer who borrowed
--   stock from another shard first credits the transfer here (once per id,
--   as credit.lua does), so that no one else can take the borrowed units
--   before the borrower gets one. Empty without KEYS[4].
-- ARGV[4] the entry's field if every buyer takes a unit: their order ids,
--   joined by spaces
-- ARGV[5] the entry's value likewise: their reservations' wire forms, in the
--   buyers' order, joined by newlines (none holds a newline)
-- ARGV[6..] the buyers, two arguments each: user id, order id (so that the
--   marks of a call where all take a unit are ARGV[6..] as they are).
-- Each buyer, in order, as if alone:
--   - the user's mark holds this very order: reserved already, with the
--     units left now (a caller that retried a call that ran reserves once;
--     the reservation is in the entry of the call that took the unit, an
--     earlier one, or this one when the same buy came twice in it);
--   - the mark holds another order: duplicate, with that order (a user twice
--     in one batch: the second sees the first's mark);
--   - no units left: the shard is empty (the caller may borrow);
--   - else one unit is taken and the mark written.
-- The checks run once per call (the stock loaded, the fence), and the writes
-- once per call for all the units taken: one outbox entry holds them all, so
-- that one Kafka message carries them and one HDEL settles them (writing and
-- removing an entry a buyer cost Redis about 1.7 µs a buyer:
-- docs/performance.md).
-- The usual call, while units remain, is one where every buyer takes a unit:
-- no buyer holds a mark, no user comes twice, and the shard has a unit for
-- each. It writes the caller's arguments as they are (building them in Lua
-- cost Redis 0.4 to 0.6 µs a buyer) and answers with one number, without
-- walking the buyers (a quarter fewer instructions for a call of 14:
-- docs/performance.md).
-- Only a call with a mark, a user twice or too few units walks its buyers
-- and builds its writes here.
-- Reply of the usual call: left, the units that remained in the shard after
-- the last buyer (buyer i of k, from 1, was reserved with left + k - i).
-- Reply of any other: two entries per buyer, in the buyers' order:
--   0, left      reserved; left units remained in the shard after it
--   4, left      reserved before this buyer's turn (the mark holds this
--                order already): not taken again, nor written again
--   1, order_id  duplicate: the user already holds order_id on this item
--   2, 0         the shard is empty
--   3, 0         the shard's stock is not loaded (then for every buyer)
--   error FENCED the shard awaits repair (nothing changed, for every buyer)
local buyers = (#ARGV - 5) / 2
local n = redis.call('GET', KEYS[1])
local reply = {}
if not n then
  for i = 1, buyers do
    reply[2 * i - 1], reply[2 * i] = 3, 0
  end
  return reply
end
n = tonumber(n)
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
if #KEYS == 5 and redis.call('ZADD', KEYS[4], 'NX', ARGV[1], ARGV[2]) == 1 then
  n = redis.call('INCRBY', KEYS[1], ARGV[3])
end
local users = {}
for i = 1, buyers do
  users[i] = ARGV[2 * i + 4]
end
local marks = redis.call('HMGET', KEYS[2], unpack(users))
if n >= buyers then
  local marked = false
  for i = 1, buyers do
    if marks[i] then
      marked = true
      break
    end
  end
  -- HSET counts the fields it adds: fewer than buyers when a user came
  -- twice. The walk below then writes each taken user's mark again, the
  -- first of its buys, over the last one written here.
  if not marked and redis.call('HSET', KEYS[2], unpack(ARGV, 6)) == buyers then
    redis.call('DECRBY', KEYS[1], buyers)
    redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
    return n - buyers
  end
end
local taken = {} -- user -> order taken in this call
local took = 0
for i = 1, buyers do
  local user, order = users[i], ARGV[2 * i + 5]
  local mark = taken[user] or marks[i]
  if mark == order then
    reply[2 * i - 1], reply[2 * i] = 4, n - took
  elseif mark then
    reply[2 * i - 1], reply[2 * i] = 1, mark
  elseif n - took <= 0 then
    reply[2 * i - 1], reply[2 * i] = 2, 0
  else
    took = took + 1
    taken[user] = order
    reply[2 * i - 1], reply[2 * i] = 0, n - took
  end
end
if took == 0 then
  return reply
end
redis.call('DECRBY', KEYS[1], took)
-- Some did not take a unit: the marks, ids and wire forms of those who did.
local newMarks, ids, wires = {}, {}, {}
local from = 1 -- where buyer i's line starts in ARGV[5]
for i = 1, buyers do
  local to = string.find(ARGV[5], '\n', from, true) or #ARGV[5] + 1
  if reply[2 * i - 1] == 0 then
    local order, k = ARGV[2 * i + 5], #ids
    newMarks[2 * k + 1], newMarks[2 * k + 2] = users[i], order
    ids[k + 1], wires[k + 1] = order, string.sub(ARGV[5], from, to - 1)
  end
  from = to + 1
end
redis.call('HSET', KEYS[2], unpack(newMarks))
redis.call('HSET', KEYS[3], table.concat(ids, ' '), table.concat(wires, '\n'))
return reply
