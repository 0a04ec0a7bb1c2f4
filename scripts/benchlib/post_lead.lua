-- wrk script: POST /api/leads with a unique lead name per request, counting statuses >= 300.
-- Environment: BENCH_PATH (default /api/leads), BENCH_TOKEN (bearer token, optional), and
-- BENCH_MAX_PER_THREAD / BENCH_DONE_DIR as accounting.lua reads them.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "accounting.lua")

local path = os.getenv("BENCH_PATH") or "/api/leads"
local token = os.getenv("BENCH_TOKEN") or ""

function init(args)
  counter = 0
  responses = 0
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  prefix = string.format("bench-%d-%d-", os.time(), id)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"name":"%s%d","email":"lead%d@example.com","phone":"+15550100","source":"bench"}',
    prefix, counter, counter)
  return wrk.format(nil, path, nil, body)
end
