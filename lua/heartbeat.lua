-- heartbeat: a gateway says it is alive and learns how many gateways are.
-- Times are Redis's own (TIME), so that gateways with skewed clocks agree.
-- KEYS[1] gateways  zset: gateway id -> ms of its last heartbeat
-- ARGV[1] gateway id
-- ARGV[2] ms of silence after which a gateway counts as gone
-- Reply: the number of live gateways, this one included
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return redis.call('ZCARD', KEYS[1])
