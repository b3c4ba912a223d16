-- wrk script: POST /api/metrics with a fresh metric and a fresh Idempotency-Key each
-- request (10 types, varying values): ingest.lua's requests with a key, as
-- benches/idempotency.sh compares.
local counter = 0
local thread_id = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

request = function()
  counter = counter + 1
  local t = "bench_" .. (counter % 10)
  local body = string.format('{"timestamp":"%s","value":%d.%d,"type":"%s"}',
    os.date("!%Y-%m-%dT%H:%M:%SZ"), counter % 1000, counter % 7, t)
  local key = string.format("bench-%d-%d-%d", os.time(), thread_id, counter)
  return wrk.format("POST", "/api/metrics",
    {["Content-Type"] = "application/json", ["Idempotency-Key"] = key}, body)
end
