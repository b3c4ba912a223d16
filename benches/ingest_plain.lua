-- wrk script: POST /api/metrics with a fresh metric each request (10 types, varying
-- values): the same requests as ingest_keyed.lua, without the key.
local counter = 0

request = function()
  counter = counter + 1
  local t = "bench_" .. (counter % 10)
  local body = string.format('{"timestamp":"%s","value":%d.%d,"type":"%s"}',
    os.date("!%Y-%m-%dT%H:%M:%SZ"), counter % 1000, counter % 7, t)
  return wrk.format("POST", "/api/metrics", {["Content-Type"] = "application/json"}, body)
end
