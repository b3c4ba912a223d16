-- wrk script: POST /api/metrics as many distinct clients, rotating X-Forwarded-For over
-- 10,000 addresses (the server must trust the loopback peer: TRUSTED_PROXIES=127.0.0.1/32),
-- so the limiter keeps a window per client as it does behind a real load balancer.
local counter = 0
request = function()
  counter = counter + 1
  local n = counter % 10000
  local client = string.format("10.0.%d.%d", math.floor(n / 250), n % 250 + 1)
  local body = string.format('{"timestamp":"%s","value":%d,"type":"bench_%d"}',
    os.date("!%Y-%m-%dT%H:%M:%SZ"), counter % 1000, counter % 10)
  return wrk.format("POST", "/api/metrics",
    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = client}, body)
end
