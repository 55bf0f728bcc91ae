-- fence: prepended to every script that changes a shard's stock or buyer
-- marks (reserve, take, credit, release). It refuses to touch a shard that
-- Redis may have rewound: one whose state was last verified by another Redis
-- process (an AOF that lost its last writes, a promoted replica, a restart).
-- The shard's ep hash records `run`, the run_id of the Redis process that
-- last verified it, and `ls`, that process's LASTSAVE at the time. The fast
-- path reads ls alone and compares it with LASTSAVE as a number (reading
-- both fields and formatting LASTSAVE as a string cost Redis 7,500 more
-- instructions a call: docs/performance.md); only when they differ (after a
-- restart, an RDB save, or a repair) does it read run and the run_id from
-- INFO (4 µs).
-- A new process never shows an armed ls: ls is armed only once the clock is
-- past it, so a process started later has a larger LASTSAVE.
-- The error names the process that verified the shard and the running one:
-- when both are live nodes of the cluster at once, the shard's slot migrated
-- (MIGRATE moves the keys as they are) and the client verifies it again
-- instead of waiting for a repair (internal/redis, Store.exec).
-- The calling script passes the ep hash as its last key and starts with:
--   local refused = fence(KEYS[#KEYS]) if refused then return refused end
local function fence(ep)
  local ls = redis.call('LASTSAVE')
  if tonumber(redis.call('HGET', ep, 'ls')) == ls then
    return nil
  end
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
  local verified = redis.call('HGET', ep, 'run')
  if verified ~= run then
    return redis.error_reply('FENCED ' .. tostring(verified) .. ' ' .. run .. ' shard awaits repair: verified by another Redis process')
  end
  if tonumber(redis.call('TIME')[1]) > ls then
    redis.call('HSET', ep, 'ls', ls)
  end
  return nil
end
