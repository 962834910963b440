-- common.lua: shared by every wrk script of bench/bench.py. Each script loads
-- it with dofile(); it numbers wrk's threads, reads BENCH_* settings from the
-- environment, and defines done(), which prints one line
-- `BENCH_JSON {...}` with throughput, latency percentiles (microseconds),
-- wrk's error counts and, when a script counts them in response(), the
-- status codes and how many 429/503 answers lacked Retry-After.

local common = {}
local threads = {}

function common.env(name, default)
   local value = os.getenv(name)
   if value == nil or value == "" then
      if default == nil then error(name .. " is not set") end
      return default
   end
   return value
end

-- Lines of a file (tokens, one a line).
function common.lines(path)
   local out = {}
   for line in io.lines(path) do
      if line ~= "" then out[#out + 1] = line end
   end
   if #out == 0 then error(path .. " is empty") end
   return out
end

-- Per-thread counters, filled by common.count() from response().
statuses = {}
missing_retry_after = 0

-- Counts one answer; a 429 or 503 must carry Retry-After (API.md).
function common.count(status, headers)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 429 or status == 503 then
      local found = false
      for name, _ in pairs(headers) do
         if string.lower(name) == "retry-after" then found = true end
      end
      if not found then missing_retry_after = missing_retry_after + 1 end
   end
end

function setup(thread)
   threads[#threads + 1] = thread
   thread:set("id", #threads)
end

function done(summary, latency, requests)
   local counted, missing = {}, 0
   for _, thread in ipairs(threads) do
      local s = thread:get("statuses")
      if type(s) == "table" then
         for code, n in pairs(s) do counted[code] = (counted[code] or 0) + n end
      end
      missing = missing + (thread:get("missing_retry_after") or 0)
   end
   local parts = {}
   for code, n in pairs(counted) do
      parts[#parts + 1] = string.format('"%d": %d', code, n)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"statuses": {%s}, "missing_retry_after": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, ", "), missing))
end

return common
