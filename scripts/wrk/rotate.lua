-- wrk script: one token per request from $WRK_TOKENS (one Authorization
-- value a line, as `flashgate bench --setup-only --tokens-file` writes),
-- never the same twice: a fresh user per buy. Thread k of $WRK_THREADS
-- (default 2, must match -t) sends lines k, k+n, k+2n, …; a thread that
-- runs out starts over, and the repeats show as non-2xx answers (409), so
-- make the file larger than the run can send.
--   WRK_TOKENS=tokens.txt WRK_THREADS=2 wrk -t2 -c128 -d8s -s scripts/wrk/rotate.lua http://host/api/v1/seckill/ID
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local toks, n, i = {}, 0, 0
local path

function init(args)
  local threads = tonumber(os.getenv("WRK_THREADS") or "2")
  local k = 0
  local file = os.getenv("WRK_TOKENS")
  assert(file, "set WRK_TOKENS")
  for line in io.lines(file) do
    if k % threads == id then
      n = n + 1
      toks[n] = line
    end
    k = k + 1
  end
  assert(n > 0, "no tokens for thread " .. id)
  path = wrk.path
end

-- No body and no Content-Type: the request `flashgate bench` sends.
local headers = {}

function request()
  i = i + 1
  if i > n then i = 1 end
  headers["Authorization"] = toks[i]
  return wrk.format("POST", path, headers)
end
