-- wrk script: POST pre-signed Standard Webhooks requests, one file line each, counting
-- statuses >= 300. HMAC is not in wrk's Lua, so the bench signs them beforehand: each line
-- is "webhook-id<TAB>webhook-timestamp<TAB>webhook-signature<TAB>body". Thread N of T sends
-- lines N, N+T, N+2T, ... in order.
-- Environment: BENCH_PATH, BENCH_SIGNED (the file), BENCH_THREADS, and
-- BENCH_MAX_PER_THREAD / BENCH_DONE_DIR as accounting.lua reads them.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "accounting.lua")

local path = os.getenv("BENCH_PATH") or "/api/leads/status"
local signed_file = os.getenv("BENCH_SIGNED")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "2")

function init(args)
  responses = 0
  bad = 0
  wrk.method = "POST"
  prepared = {}
  local n = 0
  for line in io.lines(signed_file) do
    if n % thread_count == id - 1 then
      local msg_id, stamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {  -- given headers replace wrk.headers, so all of them
        ["Content-Type"] = "application/json",
        ["webhook-id"] = msg_id,
        ["webhook-timestamp"] = stamp,
        ["webhook-signature"] = signature,
      }
      table.insert(prepared, wrk.format(nil, path, headers, body))
    end
    n = n + 1
  end
  next_index = 0
end

function request()
  -- past the end (the last requests in flight when the caller stops wrk) it sends the last
  -- one again: a replay, answered from its key
  next_index = math.min(next_index + 1, #prepared)
  return prepared[next_index]
end
