-- wrk script: POST pre-signed Standard Webhooks requests, one file line each, counting
-- statuses >= 300. HMAC is not in wrk's Lua, so the bench signs them beforehand: each line
-- is "webhook-id<TAB>webhook-timestamp<TAB>webhook-signature<TAB>body". Thread N of T sends
-- lines N, N+T, N+2T, ... in order.
-- Environment: BENCH_PATH, BENCH_SIGNED (the file), BENCH_THREADS, BENCH_MAX_PER_THREAD and
-- BENCH_DONE_DIR (as in post_lead.lua: the caller stops wrk once every thread is done).

local path = os.getenv("BENCH_PATH") or "/api/leads/status"
local signed_file = os.getenv("BENCH_SIGNED")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "2")
local max_per_thread = tonumber(os.getenv("BENCH_MAX_PER_THREAD") or "0")
local done_dir = os.getenv("BENCH_DONE_DIR") or ""
local threads = {}
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
end

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

function response(status, headers, body)
  responses = responses + 1
  if status >= 300 then
    bad = bad + 1
  end
  if max_per_thread > 0 and responses == max_per_thread then
    if done_dir ~= "" then
      local marker = io.open(done_dir .. "/thread-" .. id, "w")
      if marker then marker:close() end
    end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_bad, total_responses = 0, 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + thread:get("bad")
    total_responses = total_responses + thread:get("responses")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH non2xx=%d responses=%d requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d "
      .. "max_us=%d connect=%d read=%d write=%d timeout=%d\n",
    total_bad, total_responses, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout))
end
