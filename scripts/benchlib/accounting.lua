-- Shared by the wrk scripts (post_lead.lua, post_signed.lua): each thread counts its
-- responses and those with a status >= 300, stops after BENCH_MAX_PER_THREAD responses
-- (0 = no limit) leaving a file in BENCH_DONE_DIR (wrk itself runs its full duration, so
-- the caller interrupts it once every thread has left one), and `done` prints one
-- "BENCH key=value ..." line for scripts/benchlib/wrk.py to read.

local max_per_thread = tonumber(os.getenv("BENCH_MAX_PER_THREAD") or "0")
local done_dir = os.getenv("BENCH_DONE_DIR") or ""
local threads = {}
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
  table.insert(threads, thread)
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
