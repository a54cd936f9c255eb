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
--            operation: 0 take, 1 debit, 2 drain, 3 refund;
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

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
-- Redis turns a number argument into text slowly; the stamp of a write is
-- almost always now, whose text is made once.
local nowText = clock[1] .. string.rep('0', 6 - #clock[2]) .. clock[2]

local out = {}

-- The bucket of the current run of decisions on one key, as Redis would
-- hold it after the decisions so far: tokens is nil when there is none.
local key, first, readError
local tokens, ts, tsText
-- What the run must write at its end: nil, 'set' or 'delete'; the tokens
-- as text, and the expiry in milliseconds as text (nil to persist).
local write, text, expiry

-- failure returns the error text of a reply of redis.pcall, or nil.
local function failure(reply)
  if type(reply) == 'table' and reply.err then
    return reply.err
  end
  return nil
end

-- read starts a run on KEYS[i].
local function read(i)
  key, first, write = KEYS[i], i, nil
  local state = redis.pcall('HMGET', key, 'tokens', 'ts')
  readError = failure(state)
  if readError then
    return
  end
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

-- flush writes what the run ending at decision last leaves, to expire
-- when the bucket would be full again: a full bucket holds nothing a
-- missing one would not. When the write fails, so do the run's decisions.
local function flush(last)
  local err
  if write == 'delete' then
    err = failure(redis.pcall('DEL', key))
  elseif write == 'set' then
    err = failure(redis.pcall('HSET', key, 'tokens', text, 'ts', tsText))
    if not err and expiry then
      err = failure(redis.pcall('PEXPIRE', key, expiry))
    elseif not err then
      err = failure(redis.pcall('PERSIST', key))
    end
  end
  if err then
    for i = first, last do
      out[2 * i - 1], out[2 * i] = -1, err
    end
  end
end

-- The arguments of one decision are mostly those of the one before, and
-- their text is converted only when it changes. The four checks are
-- written out: a loop over them costs Redis's Lua 5.1 about 8% of a
-- decision.
local capacityText, rateText, opText, amountText
local capacity, rate, op, amount

for i = 1, #KEYS do
  local at = 4 * (i - 1)
  if ARGV[at + 1] ~= capacityText then
    capacityText = ARGV[at + 1]
    capacity = tonumber(capacityText)
  end
  if ARGV[at + 2] ~= rateText then
    rateText = ARGV[at + 2]
    rate = tonumber(rateText)
  end
  if ARGV[at + 3] ~= opText then
    opText = ARGV[at + 3]
    op = tonumber(opText)
  end
  if ARGV[at + 4] ~= amountText then
    amountText = ARGV[at + 4]
    amount = tonumber(amountText)
  end

  if KEYS[i] ~= key then
    if key then
      flush(i - 1)
    end
    read(i)
  end

  if readError then
    out[2 * i - 1], out[2 * i] = -1, readError
  elseif not (capacity and rate and op and amount) then
    out[2 * i - 1], out[2 * i] = -1, 'arguments must be numbers'
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
    if op == 0 then
      if t + slack < amount then
        allowed = 0
      else
        t = t - amount
      end
    elseif op == 1 then
      t = math.max(t - amount, -capacity)
    elseif op == 3 then
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
      local ms = math.huge
      if rate > 0 then
        ms = math.ceil((capacity - t) / rate * 1000) + 1
      end
      expiry = nil
      if ms < 1e15 then
        expiry = string.format('%d', ms)
      end
    end
    out[2 * i - 1], out[2 * i] = allowed, after
  end
end
if key then
  flush(#KEYS)
end
out[2 * #KEYS + 1] = now
return out
