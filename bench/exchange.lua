-- wrk script: token exchange (RFC 8693) with Basic auth. With BENCH_SUBJECTS (a file of access
-- tokens, one per line), each request exchanges the next one, so the server verifies each
-- subject token's signature rather than finding it in its cache of checked tokens; otherwise
-- BENCH_BODY is sent as it is. Prints the summary line bench/token.sh parses.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")

local prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
  "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&subject_token="
local bodies = {}
local next_one = 1
local file = os.getenv("BENCH_SUBJECTS")
if file then
  for line in io.lines(file) do
    bodies[#bodies + 1] = prefix .. line
  end
else
  wrk.body = os.getenv("BENCH_BODY")
end

request = function()
  if #bodies == 0 then
    return wrk.format()
  end
  local body = bodies[next_one]
  next_one = next_one % #bodies + 1
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d status_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
