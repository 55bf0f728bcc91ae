-- count: read a shard's numbers in one atomic step, for stats and
-- reconciliation (a buy between separate reads would count its unit twice
-- or not at all).
-- KEYS[1] stock   string: units left in the shard
-- KEYS[2] xout    hash: transfer id -> "target:units:ms"
-- KEYS[3] outbox  hash: order ids -> reservations (reserve.lua)
-- Reply: {stock, in_transfer, field...}: the units left, the units sent
-- out in transfers not yet settled, then the outbox's fields (the order ids
-- of each entry, joined by spaces)
local out = {tonumber(redis.call('GET', KEYS[1]) or '0'), 0}
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
  local k = string.match(v, '^[^:]*:([^:]*):')
  if k then
    out[2] = out[2] + tonumber(k)
  end
end
for _, id in ipairs(redis.call('HKEYS', KEYS[3])) do
  out[#out + 1] = id
end
return out
