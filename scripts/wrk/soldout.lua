-- wrk script: every request carries the same shopper token, the first line
-- of $WRK_TOKENS (an Authorization value, "Bearer <jwt>"). A static header
-- lets wrk build the request once, so the generator costs as little as it
-- can: the sold-out storm of issue 12, and its bare-handler ceiling.
--   WRK_TOKENS=tokens.txt wrk -t2 -c128 -d8s -s scripts/wrk/soldout.lua http://host/api/v1/seckill/ID
local file = os.getenv("WRK_TOKENS")
assert(file, "set WRK_TOKENS")
local f = assert(io.open(file, "r"))
local tok = f:read("*l")
f:close()
-- No body and no Content-Type: the request `flashgate bench` sends.
wrk.method = "POST"
wrk.headers["Authorization"] = tok
