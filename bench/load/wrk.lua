-- One phase of `npm run bench` in wrk 4.1 (bench/load/wrk.ts runs it): POST /graphql with one JSON
-- body, each request with the next of the pre-signed user tokens, and one JSON line at the end.
-- args: the tokens file (one a line), the body, the thread count, the connection count, and
-- optionally a bodies file (one a line, the body of each token's request: a proof-of-work solution
-- is the user's own), which then stands for the body.
--
-- wrk gives each thread its own Lua state: thread k takes the tokens k, k + threads, …, so no token
-- goes out twice in a phase until a thread has sent its share (`reused` counts those).

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

-- per thread, read by done() through thread:get, so globals
sent, share, non2xx, graphqlErrors, connections = 0, 0, 0, 0, 0
local tokens, prefix, suffix, requests = {}, nil, nil, nil

function init(args)
  local count = tonumber(args[3])
  connections = tonumber(args[4])
  local n = 0
  for line in io.lines(args[1]) do
    if n % count == id then
      share = share + 1
      tokens[share] = line
    end
    n = n + 1
  end
  if args[5] then
    -- a request per token, each with its own body, built once before the phase
    requests, n = {}, 0
    local mine = 0
    for body in io.lines(args[5]) do
      if n % count == id then
        mine = mine + 1
        requests[mine] = wrk.format("POST", "/graphql", { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[mine] }, body)
      end
      n = n + 1
    end
    return
  end
  -- wrk.format once, the token spliced in per request: a concatenation, no header table per request
  local req = wrk.format("POST", "/graphql", { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer \1" }, args[2])
  local at = req:find("\1", 1, true)
  prefix, suffix = req:sub(1, at - 1), req:sub(at + 1)
end

function request()
  local i = sent % share + 1
  sent = sent + 1
  if requests then return requests[i] end
  return prefix .. tokens[i] .. suffix
end

-- GraphQL errors (UNAVAILABLE, RATE_LIMITED, …) travel in 200 answers
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif body:find('"errors"', 1, true) then
    graphqlErrors = graphqlErrors + 1
  end
end

-- utime + stime of a /proc stat file, in clock ticks
local function statTicks(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local stat = f:read("*a")
  f:close()
  local fields = {}
  for field in stat:sub(stat:find(") ", 1, true) + 2):gmatch("%S+") do fields[#fields + 1] = field end
  return tonumber(fields[12]) + tonumber(fields[13]), stat:match("^%d+")
end

-- CPU of the threads that sent the load, in clock ticks: the process's (the threads are joined by
-- now, their time is in it) less the main thread's, which loaded the tokens (~130 ms for 80,000:
-- set-up, as the signing of the tokens is to autocannon) and slept through the phase
local function loadTicks()
  local all, pid = statTicks("/proc/self/stat")
  local main = pid and statTicks("/proc/self/task/" .. pid .. "/stat")
  if not all or not main then return -1 end
  return all - main
end

-- The latencies as measured. Before done(), wrk "corrects" its histogram for coordinated omission:
-- every latency n ≥ 2e, e = duration / (requests / connections), adds one sample at each of n - e,
-- n - 2e, … above e (stats_correct, wrk 4.1 src/stats.c). The bench compares with autocannon, and
-- the issue's floors are on latencies as answered, so the correction is undone: read the histogram
-- (src/stats.h: uint64 count, limit, min, max, then one counter per µs) and subtract, from the
-- top, what each latency added below it. Returns p50 and p99 in µs and the count of samples.
local function measuredPercentiles(latency, duration, requests, connections)
  local ffi = require("ffi")
  local s = ffi.cast("uint64_t**", latency)[0]
  local min, max = tonumber(s[2]), tonumber(s[3])
  local data = s + 4
  local per = math.floor(requests / connections)
  local e = per > 0 and math.floor(duration / per) or math.huge
  -- samples already taken back, by value mod e: the ones above m in m's class
  local above, values, counts = {}, {}, {}
  local total = 0
  if max < min then return 0, 0, 0 end
  for m = max, min, -1 do
    local c = tonumber(data[m])
    if c > 0 then
      if m > e then
        local r = m % e
        c = c - (above[r] or 0)
        above[r] = (above[r] or 0) + c
      end
      -- a count below zero would be a histogram laid out otherwise: the caller checks the total
      if c ~= 0 then
        values[#values + 1], counts[#counts + 1] = m, c
        total = total + c
      end
    end
  end
  -- wrk's own rule (stats_percentile): the first value whose running count reaches round(p·N + 0.5)
  local function percentile(p)
    local rank = math.floor(p / 100 * total + 1)
    local run = 0
    for i = #values, 1, -1 do
      run = run + counts[i]
      if run >= rank then return values[i] end
    end
    return 0
  end
  return percentile(50), percentile(99), total
end

function done(summary, latency, requests)
  local cpu = loadTicks()
  local connections = tonumber(threads[1]:get("connections"))
  local out = { sent = 0, reused = 0, non2xx = 0, graphqlErrors = 0 }
  for _, thread in ipairs(threads) do
    local s = thread:get("sent")
    out.sent = out.sent + s
    out.reused = out.reused + math.max(0, s - thread:get("share"))
    out.non2xx = out.non2xx + thread:get("non2xx")
    out.graphqlErrors = out.graphqlErrors + thread:get("graphqlErrors")
  end
  local p50, p99, samples = measuredPercentiles(latency, summary.duration, summary.requests, connections)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"sent":%d,"reused":%d,"non2xx":%d,"graphqlErrors":%d,"socketErrors":%d,"timeouts":%d,'
      .. '"p50Us":%d,"p99Us":%d,"samples":%d,"correctedP50Us":%d,"correctedP99Us":%d,"cpuTicks":%d}\n',
    summary.requests, summary.duration, out.sent, out.reused, out.non2xx, out.graphqlErrors, e.connect + e.read + e.write, e.timeout,
    p50, p99, samples, latency:percentile(50), latency:percentile(99), cpu))
end
