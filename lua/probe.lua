-- probe: whether a shard is fenced (fence.lua is prefixed); the worker's
-- repair job asks it of every shard every tick.
-- KEYS[1] ep  hash: the fence
-- Reply: 0 verified, or error FENCED
local refused = fence(KEYS[#KEYS])
if refused then
  return refused
end
return 0
