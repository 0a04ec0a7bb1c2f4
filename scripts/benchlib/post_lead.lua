-- wrk script: POST /api/leads with a unique lead name per request, counting statuses >= 300.
-- Environment: BENCH_PATH (default /api/leads), BENCH_TOKEN (bearer token, optional),
-- BENCH_MAX_PER_THREAD (stop a thread after that many responses; 0 = no limit) and
-- BENCH_DONE_DIR (where a stopped thread leaves a file: wrk itself runs its full duration, so the
-- caller interrupts it once every thread has left one).

local path = os.getenv("BENCH_PATH") or "/api/leads"
local token = os.getenv("BENCH_TOKEN") or ""
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
