-- wrk script: rotate.lua's buys (a fresh user per request from $WRK_TOKENS,
-- thread k of $WRK_THREADS taking lines k, k+n, …) sent at a set rate,
-- $WRK_RATE requests a second in all, instead of as fast as answers come.
-- Each thread draws its share as arrival times a random (exponential) gap
-- apart, as an open loop's arrivals; a connection that has its answer takes
-- the next arrival not yet taken and waits until then (wrk's timers count
-- whole milliseconds, so a fraction of one is kept by rounding up or down at
-- random). The rate is then the one asked for, whatever the answers take,
-- as long as some connection is free when an arrival comes; when none is,
-- the arrivals queue and go out as connections free up. wrk measures
-- latency from when it sent each request, so a request held back for want
-- of a free connection does not count its wait (coordinated omission): at a
-- rate the server cannot hold this understates the tail; at half the
-- maximum a connection is busy a fraction of the time and it matters little.
--   WRK_TOKENS=tokens.txt WRK_RATE=20000 wrk -t2 -c128 -d8s -s scripts/wrk/paced.lua http://host/api/v1/seckill/ID
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "rotate.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
int clock_gettime(int clock, paced_timespec *t);
]]
local ts = ffi.new("paced_timespec")
local function now() -- ms, CLOCK_MONOTONIC
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local gap -- the thread's mean gap between arrivals, ms
local nextArrival
local rotateInit = init

function init(args)
  rotateInit(args)
  local rate = tonumber(os.getenv("WRK_RATE") or "")
  assert(rate and rate > 0, "set WRK_RATE to the requests a second to send, in all")
  gap = 1000 * tonumber(os.getenv("WRK_THREADS") or "2") / rate
  math.randomseed(os.time() + id)
end

function delay()
  local t = now()
  if not nextArrival then
    nextArrival = t
  end
  nextArrival = nextArrival - gap * math.log(1 - math.random())
  local d = nextArrival - t
  if d <= 0 then
    return 0
  end
  local whole = math.floor(d)
  if math.random() < d - whole then
    whole = whole + 1
  end
  return whole
end
