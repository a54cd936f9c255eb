-- Token bucket decisions, one for each key, each atomic and all timed by
-- one reading of the Redis clock: Redis runs a script alone, so the
-- decisions of one call happen at one instant, in the order of KEYS.
--
-- KEYS[i]  the bucket of decision i: a hash with fields tokens (may be
--          fractional) and ts (Redis time in microseconds when tokens was
--          true)
-- ARGV     four arguments for each decision, in the order of KEYS:
--            capacity;
--            rate, tokens a second;
--            operation: 0 take, 1 debit, 2 drain, 3 refund (compared as
--              text, which costs less than converting it);
--            tokens to take, debit or refund, or microseconds to drain for
--
-- Returns two fields for each decision, allowed (0 or 1) and the tokens
-- after (as text, to keep fractions), or -1 and the error text for a
-- decision that failed; and last the Redis time in microseconds.
--
-- Decisions in a row on one key read the bucket once and write it once,
-- after the last of them: nothing runs in between, so the result is the
-- same as reading and writing it for each, and much cheaper.

if #ARGV ~= 4 * #KEYS then
  return redis.error_reply('want 4 arguments for each key')
end

local slack = 1e-9
local count = #KEYS

-- A local costs less to reach than a global, and arithmetic converts text
-- for less than a call of tonumber does.
local tonumber = tonumber
local clock = redis.call('TIME')
local now = clock[1] * 1000000 + clock[2]
-- Redis turns a number argument into text slowly; the stamp of a write is
-- almost always now, whose text is made once.
local nowText = clock[1] .. string.rep('0', 6 - #clock[2]) .. clock[2]

local out = {}

-- The bucket of the current run of decisions on one key, as Redis would
-- hold it after the decisions so far: tokens is nil when there is none.
-- readError is the error of the run's read, and first its first decision.
local key, first, readError
local tokens, ts, tsText
-- What the run must write at its end: nil, 'set' or 'delete'; the tokens
-- as text, and the expiry in milliseconds (nil to persist).
local write, text, expiry

-- The arguments of one decision are mostly those of the one before, and
-- their text is converted only when it changes. The checks are written
-- out, and the run's read and write sit inline in the loop: a loop over
-- the checks, or a function for each step, costs Redis's Lua 5.1 several
-- per cent of a decision.
local capacityText, rateText, amountText
local capacity, rate, amount

for i = 1, count do
  local at = 4 * i - 4
  if ARGV[at + 1] ~= capacityText then
    capacityText = ARGV[at + 1]
    capacity = tonumber(capacityText)
  end
  if ARGV[at + 2] ~= rateText then
    rateText = ARGV[at + 2]
    rate = tonumber(rateText)
  end
  local op = ARGV[at + 3]
  if ARGV[at + 4] ~= amountText then
    amountText = ARGV[at + 4]
    amount = tonumber(amountText)
  end

  -- A new key starts a run: read its bucket once.
  if KEYS[i] ~= key then
    key, first, write, tokens = KEYS[i], i, nil, nil
    local state = redis.pcall('HMGET', key, 'tokens', 'ts')
    readError = state.err
    if not readError then
      tokens, tsText = tonumber(state[1]), state[2]
      if tsText == nowText then
        ts = now
      else
        ts = tonumber(tsText)
      end
      if ts == nil then
        tokens = nil
      end
    end
  end

  if readError then
    out[2 * i - 1], out[2 * i] = -1, readError
  elseif not (capacity and rate and amount) then
    out[2 * i - 1], out[2 * i] = -1, 'arguments must be numbers'
  elseif op ~= '0' and op ~= '1' and op ~= '2' and op ~= '3' then
    out[2 * i - 1], out[2 * i] = -1, 'unknown operation ' .. op
  else
    local t, stamp, stampText = tokens, ts, tsText
    if t == nil then
      t, stamp = capacity, now
    end
    -- A clock that stepped back (a failover to a replica) refills nothing
    -- and never moves the stamp back.
    if now >= stamp then
      t = t + (now - stamp) * rate / 1000000
      stamp, stampText = now, nowText
    end
    if t > capacity then
      t = capacity
    end

    local allowed = 1
    if op == '0' then
      if t + slack < amount then
        allowed = 0
      else
        t = t - amount
      end
    elseif op == '1' then
      t = math.max(t - amount, -capacity)
    elseif op == '3' then
      t = math.min(t + amount, capacity)
    else
      t = math.min(t, -amount * rate / 1000000)
    end

    local after = string.format('%.17g', t)
    if allowed == 1 and t >= capacity then
      write, tokens = 'delete', nil
    elseif allowed == 1 then
      write, tokens, ts, tsText, text = 'set', t, stamp, stampText, after
      -- A bucket that takes over 30,000 years to fill is kept for good.
      expiry = nil
      if rate > 0 then
        expiry = math.ceil((capacity - t) / rate * 1000) + 1
        if expiry >= 1e15 then
          expiry = nil
        end
      end
    end
    out[2 * i - 1], out[2 * i] = allowed, after
  end

  -- The last decision of a run writes what the run leaves, to expire when
  -- the bucket would be full again: a full bucket holds nothing a missing
  -- one would not. When the write fails, so do the run's decisions.
  if write and KEYS[i + 1] ~= key then
    local reply
    if write == 'delete' then
      reply = redis.pcall('DEL', key)
    else
      reply = redis.pcall('HSET', key, 'tokens', text, 'ts', tsText)
      if type(reply) ~= 'table' and expiry then
        reply = redis.pcall('PEXPIRE', key, expiry)
      elseif type(reply) ~= 'table' then
        reply = redis.pcall('PERSIST', key)
      end
    end
    if type(reply) == 'table' then
      for j = first, i do
        out[2 * j - 1], out[2 * j] = -1, reply.err
      end
    end
  end
end
out[2 * count + 1] = now
return out
