-- Shared by the bench scripts: numbered threads, a lines-of-a-file reader and one
-- machine-readable result line (BENCH_RESULT {json}) that bench/load.py parses.
local M = {}
local threads = {}

function M.setup(thread)
  table.insert(threads, thread)
  -- A global in the thread's own Lua state: unique SKUs and random seeds per thread.
  thread:set("thread_id", #threads)
end

function M.lines(path)
  local items = {}
  for line in io.lines(path) do
    if line ~= "" then table.insert(items, line) end
  end
  assert(#items > 0, "no lines in " .. path)
  return items
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end

return M
