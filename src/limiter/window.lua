-- Exact sliding-window logs, one decision per key, in arrival order.
-- Each log is a list of the accepted requests' times (microseconds, Redis
-- clock), oldest first, so expiry pops from the head and acceptance pushes on
-- the tail: O(1) amortised, at most `limit` entries per key.
-- ARGV[1..4]: write limit, write window, read limit, read window (microseconds).
-- KEYS[i] is a client's key; ARGV[4 + i] is its policy (0 write, 1 read).
-- Returns, per key, {allowed (0|1), remaining, microseconds until the oldest
-- counted request leaves the window}, flattened.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local p = tonumber(ARGV[4 + i]) * 2
  local limit = tonumber(ARGV[p + 1])
  local window = tonumber(ARGV[p + 2])
  local horizon = now - window
  local oldest = redis.call('LINDEX', key, 0)
  while oldest and tonumber(oldest) <= horizon do
    redis.call('LPOP', key)
    oldest = redis.call('LINDEX', key, 0)
  end
  local count = redis.call('LLEN', key)
  local allowed = 0
  if count < limit then
    redis.call('RPUSH', key, now)
    redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1)
    count = count + 1
    allowed = 1
    oldest = oldest or now
  end
  local reset = window
  if oldest then
    reset = tonumber(oldest) + window - now
  end
  out[#out + 1] = allowed
  out[#out + 1] = limit - count
  out[#out + 1] = reset
end
return out
