-- wrk script: rotate.lua's buys (a fresh user per request from $WRK_TOKENS,
-- thread k of $WRK_THREADS taking lines k, k+n, …) sent at a set rate
-- instead of as fast as answers come: after each answer a connection waits
-- a random delay, exponential with mean $WRK_DELAY_MS (a fraction of a
-- millisecond is kept by rounding up or down at random, since wrk's timers
-- count whole milliseconds), so that the connections' requests arrive
-- spread out, about as an open loop's would. The rate is about
-- connections × 1000 / (WRK_DELAY_MS + latency in ms); wrk prints the rate
-- it reached. wrk measures latency from when it sent each request: a
-- connection whose answer is late sends its next one late too (coordinated
-- omission), so at a rate the server cannot hold this understates the tail;
-- at half the maximum the delays dwarf the answers and it matters little.
--   WRK_TOKENS=tokens.txt WRK_DELAY_MS=6.2 wrk -t2 -c128 -d8s -s scripts/wrk/paced.lua http://host/api/v1/seckill/ID
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "rotate.lua")

local mean
local rotateInit = init

function init(args)
  rotateInit(args)
  mean = tonumber(os.getenv("WRK_DELAY_MS") or "")
  assert(mean and mean > 0, "set WRK_DELAY_MS to the mean delay between a connection's requests, in ms")
  math.randomseed(os.time() + id)
end

function delay()
  local d = -mean * math.log(1 - math.random())
  local whole = math.floor(d)
  if math.random() < d - whole then
    whole = whole + 1
  end
  return whole
end
