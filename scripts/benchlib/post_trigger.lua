-- wrk script: the same pre-signed Pusher API trigger again and again, counting statuses >= 300.
-- Pusher's HTTP API signs the path, its query and the body's MD5 with a timestamp good for
-- 600 s, and has no replay guard: each copy is a new event, stored as a trigger would be.
-- HMAC is not in wrk's Lua, so the bench signs it beforehand.
-- Environment: BENCH_TARGET (the signed path with its query), BENCH_BODY, and
-- BENCH_MAX_PER_THREAD / BENCH_DONE_DIR as accounting.lua reads them.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "accounting.lua")

local target = os.getenv("BENCH_TARGET")
local body = os.getenv("BENCH_BODY")

function init(args)
  responses = 0
  bad = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  prepared = wrk.format(nil, target, nil, body)
end

function request()
  return prepared
end
