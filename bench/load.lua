-- wrk script: POSTs the prepared requests of a file, one line each: path <TAB> token <TAB> body.
-- Arguments: <file> <threads> <kind>; kind "order" adds a unique Idempotency-Key per request.
-- Each thread takes every <threads>-th line, so no two threads send the same subscription.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  kind = args[3]
  reqs = {}
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      local path, token, body = line:match("([^\t]*)\t([^\t]*)\t(.*)")
      reqs[#reqs + 1] = {path, token, body}
    end
    n = n + 1
  end
  i, ok, other = 0, 0, 0
  statuses = {}  -- status -> count, of the answers that were not 2xx
  prefix = string.format("wrk-%d-%d-", os.time(), id)
end

function request()
  i = i + 1
  local r = reqs[((i - 1) % #reqs) + 1]
  local headers = {["Authorization"] = "Bearer " .. r[2], ["Content-Type"] = "application/json"}
  if kind == "order" then
    headers["Idempotency-Key"] = prefix .. i
  end
  return wrk.format("POST", r[1], headers, r[3])
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    other = other + 1
    statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
  end
end

function done(summary, latency, requests)
  local good, bad, sent = 0, 0, 0
  local by_status = {}
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    bad = bad + t:get("other")
    sent = sent + t:get("i")
    for status, count in pairs(t:get("statuses")) do
      by_status[#by_status + 1] = string.format('["%s", %d]', status, count)
    end
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "ok": %d, "not_ok": %d, "sent": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p99_us": %d, "not_ok_by_status": [%s]}\n',
    summary.requests, summary.duration, good, bad, sent,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(by_status, ", ")))
end
