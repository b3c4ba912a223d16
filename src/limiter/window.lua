-- Exact sliding-window logs for a batch of decisions, grouped by key.
-- Each log is a list of the accepted requests' times (microseconds, Redis
-- clock), oldest first: expiry pops from the head, acceptance pushes on the
-- tail, O(1) amortised, at most `limit` entries per key.
-- ARGV[1..4]: write limit, write window, read limit, read window (microseconds).
-- KEYS[i] is a client's key; ARGV[3 + 2i] its policy (0 write, 1 read) and
-- ARGV[4 + 2i] how many requests, in arrival order, ask under it now.
-- Returns, per key, {accepted, count after, microseconds until the oldest
-- counted request leaves the window}, flattened. The first `accepted`
-- requests of the key are accepted, the rest refused and not recorded.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local p = tonumber(ARGV[3 + 2 * i]) * 2
  local want = tonumber(ARGV[4 + 2 * i])
  local limit = tonumber(ARGV[p + 1])
  local window = tonumber(ARGV[p + 2])
  local horizon = now - window
  local oldest = redis.call('LINDEX', key, 0)
  while oldest and tonumber(oldest) <= horizon do
    redis.call('LPOP', key)
    oldest = redis.call('LINDEX', key, 0)
  end
  local count = redis.call('LLEN', key)
  local accepted = math.max(math.min(want, limit - count), 0)
  if accepted > 0 then
    local stamps = {}
    for j = 1, accepted do
      stamps[j] = now
    end
    redis.call('RPUSH', key, unpack(stamps))
    redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1)
    count = count + accepted
    oldest = oldest or now
  end
  local reset = window
  if oldest then
    reset = tonumber(oldest) + window - now
  end
  out[#out + 1] = accepted
  out[#out + 1] = count
  out[#out + 1] = reset
end
return out
