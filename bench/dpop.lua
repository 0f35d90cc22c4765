-- wrk script: client credentials with Basic auth and a DPoP proof (RFC 9449) per request, each
-- the next line of BENCH_PROOFS (a proof's jti is single use), then the summary line that
-- bench/token.sh parses.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.body = "grant_type=client_credentials"

local proofs = {}
local next_one = 1
for line in io.lines(os.getenv("BENCH_PROOFS")) do
  proofs[#proofs + 1] = line
end

-- wrk.format uses the headers it is given instead of wrk.headers: pass them all.
local headers = {}
for k, v in pairs(wrk.headers) do
  headers[k] = v
end

request = function()
  headers["DPoP"] = proofs[next_one]
  next_one = next_one % #proofs + 1
  return wrk.format(nil, nil, headers)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d status_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
