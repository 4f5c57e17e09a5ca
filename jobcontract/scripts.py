"""The Lua scripts that move a job record between states atomically, so concurrent actors (a
cancelling API, a worker starting a step, a redelivered copy of the same step) cannot
overwrite each other.

States: queued -> running -> succeeded | failed; queued -> cancelled. Every ending and every
finished step is PUBLISHed on the events channel, which the API listens to with a single
subscription to wake synchronous requests and streams.
"""

# KEYS: job, pending; ARGV: now, step field, step json, job id. Returns {status found, created_at};
# 'expired' for a queued job past its deadline (the caller fails it)
START = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing', false} end
local deadline = redis.call('HGET', KEYS[1], 'deadline_at')
if status == 'queued' and deadline and tonumber(ARGV[1]) > tonumber(deadline) then return {'expired', false} end
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'updated_at', ARGV[1], ARGV[2], ARGV[3])
  redis.call('HSETNX', KEYS[1], 'started_at', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
  return {'running', redis.call('HGET', KEYS[1], 'created_at')}
end
return {status, false}
"""

# KEYS: job, pending, input; ARGV: now, new status, 'result'|'error', payload json, step field,
# step json, ttl, job id, channel
FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status ~= 'queued' and status ~= 'running' then return status end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[1], 'finished_at', ARGV[1],
           ARGV[3], ARGV[4], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('ZREM', KEYS[2], ARGV[8])
redis.call('DEL', KEYS[3])
redis.call('PUBLISH', ARGV[9], ARGV[8])
return ARGV[2]
"""

# a step that is not the last finished (its output is stored); the job runs on. KEYS: job,
# pending; ARGV: now, step field, step json, job id, channel. The PUBLISH wakes streams
# waiting for parts.
STEP_DONE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then return status or 'missing' end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[4])
return status
"""

# KEYS: job, pending, input; ARGV: now, job id, channel
CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1], 'finished_at', ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
  redis.call('PUBLISH', ARGV[3], ARGV[2])
  return 'cancelled'
end
if status == 'cancelled' then return 'already_cancelled' end
return status
"""

# counted only on a record that still exists: HINCRBY would revive an expired one. KEYS: job
COUNT_RESEND = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], 'resent', 1) end"
