-- wrk script: a POST whose body ends in a token taken from a file. With BENCH_ASSERTIONS (a file
-- of tokens, one per line), each request carries the next one: by default client credentials with
-- a signed assertion (a jti is single use); with BENCH_PREFIX, that body prefix instead (token
-- exchange: the next subject token) and BENCH_BASIC as Basic credentials. Otherwise BENCH_BODY is
-- sent as it is (a platform token, reusable). Prints the summary line bench/token.sh parses.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if os.getenv("BENCH_BASIC") then
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
end

local prefix = os.getenv("BENCH_PREFIX") or ("grant_type=client_credentials&client_id=" .. (os.getenv("BENCH_CLIENT_ID") or "") ..
  "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=")
local assertions = {}
local next_one = 1
local file = os.getenv("BENCH_ASSERTIONS")
if file then
  for line in io.lines(file) do
    assertions[#assertions + 1] = prefix .. line
  end
else
  wrk.body = os.getenv("BENCH_BODY")
end

request = function()
  if #assertions == 0 then
    return wrk.format()
  end
  local body = assertions[next_one]
  next_one = next_one % #assertions + 1
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d status_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
