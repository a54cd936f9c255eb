-- Records that an instance is alive and counts the instances alive.
--
-- KEYS[1]  a sorted set of instance ids scored by their last heartbeat
-- ARGV[1]  this instance's id
-- ARGV[2]  how long a heartbeat counts, in milliseconds
--
-- Returns the number of instances whose heartbeat still counts.

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[2])

redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
