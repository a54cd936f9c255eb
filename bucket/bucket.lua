-- One decision on one token bucket, atomically, timed by the Redis clock.
--
-- KEYS[1]  the bucket: a hash with fields tokens (may be fractional) and ts
--          (Redis time in microseconds when tokens was true)
-- ARGV[1]  capacity
-- ARGV[2]  rate, tokens a second
-- ARGV[3]  operation: 0 take, 1 debit, 2 drain, 3 refund
-- ARGV[4]  tokens to take, debit or refund, or microseconds to drain for
--
-- Returns {allowed (0 or 1), tokens after (as a string, to keep fractions),
-- Redis time in microseconds}.

local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local op = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local slack = 1e-9

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end

-- A clock that stepped back (a failover to a replica) refills nothing and
-- never moves the stamp back.
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000000
  ts = now
end
if tokens > capacity then
  tokens = capacity
end

local allowed = 1
if op == 0 then
  if tokens + slack < amount then
    allowed = 0
  else
    tokens = tokens - amount
  end
elseif op == 1 then
  tokens = math.max(tokens - amount, -capacity)
elseif op == 3 then
  tokens = math.min(tokens + amount, capacity)
else
  tokens = math.min(tokens, -amount * rate / 1000000)
end

local text = string.format('%.17g', tokens)
if allowed == 1 then
  if tokens >= capacity then
    -- A full bucket holds nothing a new one would not.
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'tokens', text, 'ts', ts)
    if rate > 0 then
      local ms = math.ceil((capacity - tokens) / rate * 1000) + 1
      redis.call('PEXPIRE', KEYS[1], ms)
    else
      redis.call('PERSIST', KEYS[1])
    end
  end
end

return {allowed, text, now}
