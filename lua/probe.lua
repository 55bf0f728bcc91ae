-- probe: whether a shard is fenced (fence.lua is prefixed); the worker's
-- repair job asks it of every shard every tick. A shard without stock (not
-- loaded, or archived) has nothing to guard and is not fenced.
-- KEYS[1] stock  string: units left in the shard
-- KEYS[2] ep     hash: the fence
-- Reply: 0 verified or not loaded, or error FENCED
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
return 0
