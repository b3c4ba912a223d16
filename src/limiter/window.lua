-- Exact sliding-window logs for a batch of decisions, grouped by client, with
-- quota leases (src/limiter/lease.rs).
-- Per client and policy, two keys: KEYS[2i-1] is its log, a list of
-- "stamp:n" entries (n requests, or n leased slots, counted at `stamp`,
-- microseconds of the Redis clock), oldest first; KEYS[2i] is how many the
-- log counts. One entry per call and client (plus one per lease), so a burst
-- costs O(1) here and the log holds at most one entry per call in the window.
-- ARGV[1..4]: write limit, write window, read limit, read window (µs);
-- ARGV[5]: lease duration (µs). Per client, six ARGV from 6 + 6(i-1): policy
-- (0 write, 1 read), requests asking now (in arrival order), lease slots
-- wanted (0: none), and the give-back of an ended lease: its entry's stamp,
-- its size, and its unused slots (0: none).
-- Returns per client {accepted, count after, µs until the oldest counted
-- entry leaves the window, slots leased, the lease entry's stamp}, flattened.
-- The first `accepted` requests are accepted, the rest refused and not
-- recorded. A lease comes only with a decision that accepts every request,
-- and only while the count stays within half the limit: near the limit every
-- decision is made here. A leased slot is stamped at the lease's end, so it
-- stays counted until one window after any moment it can be used. Stamps
-- never go below the newest entry's, so the log stays in order.
-- Numbers are written with %d: Lua's own number-to-string keeps 14 digits.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lease_us = tonumber(ARGV[5])
local out = {}

local function parse(entry)
  local sep = string.find(entry, ':', 1, true)
  return tonumber(string.sub(entry, 1, sep - 1)), tonumber(string.sub(entry, sep + 1))
end

for i = 1, #KEYS / 2 do
  local log, total = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 5 + 6 * (i - 1)
  local p = tonumber(ARGV[a + 1]) * 2
  local want = tonumber(ARGV[a + 2])
  local lease = tonumber(ARGV[a + 3])
  local back_unused = tonumber(ARGV[a + 6])
  local limit = tonumber(ARGV[p + 1])
  local window = tonumber(ARGV[p + 2])
  local count = tonumber(redis.call('GET', total) or 0)
  local changed = false

  -- What an ended lease left unused comes back, if its entry still counts.
  if back_unused > 0 then
    local entry = ARGV[a + 4] .. ':' .. ARGV[a + 5]
    local at = redis.call('LPOS', log, entry, 'RANK', -1)
    if at then
      local left = tonumber(ARGV[a + 5]) - back_unused
      if left > 0 then
        redis.call('LSET', log, at, ARGV[a + 4] .. ':' .. string.format('%d', left))
      else
        redis.call('LREM', log, -1, entry)
      end
      count = count - back_unused
      changed = true
    end
  end

  local horizon = now - window
  local oldest = nil
  local head = redis.call('LINDEX', log, 0)
  while head do
    local stamp, n = parse(head)
    if stamp > horizon then
      oldest = stamp
      break
    end
    redis.call('LPOP', log)
    count = count - n
    changed = true
    head = redis.call('LINDEX', log, 0)
  end
  if not oldest then
    count = 0
  end
  count = math.max(count, 0)

  local stamp = now
  if oldest then
    stamp = math.max(stamp, (parse(redis.call('LINDEX', log, -1))))
  end
  local accepted = math.max(math.min(want, limit - count), 0)
  local leased = 0
  if accepted == want and lease > 0 then
    leased = math.max(math.min(lease, math.floor(limit / 2) - count - accepted), 0)
  end
  if accepted > 0 then
    redis.call('RPUSH', log, string.format('%d:%d', stamp, accepted))
    count = count + accepted
    oldest = oldest or stamp
  end
  local lease_stamp = 0
  if leased > 0 then
    lease_stamp = math.max(now + lease_us, stamp)
    redis.call('RPUSH', log, string.format('%d:%d', lease_stamp, leased))
    count = count + leased
    oldest = oldest or lease_stamp
  end

  if changed or accepted > 0 or leased > 0 then
    if count > 0 then
      local ttl_ms = math.ceil((window + lease_us) / 1000) + 1
      redis.call('SET', total, string.format('%d', count), 'PX', ttl_ms)
      redis.call('PEXPIRE', log, ttl_ms)
    else
      redis.call('DEL', total, log)
    end
  end

  local reset = window
  if oldest then
    reset = oldest + window - now
  end
  out[#out + 1] = accepted
  out[#out + 1] = count
  out[#out + 1] = reset
  out[#out + 1] = leased
  out[#out + 1] = lease_stamp
end
return out
