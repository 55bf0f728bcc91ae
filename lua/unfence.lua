-- unfence: mark a repaired shard verified by this Redis process; the
-- fence's fast path arms itself on the next script past this second.
-- KEYS[1] ep  hash: the fence (see fence.lua)
-- Reply: 1
redis.call('HDEL', KEYS[1], 'ls')
redis.call('HSET', KEYS[1], 'run', string.match(redis.call('INFO', 'server'), 'run_id:(%w+)'))
return 1
