-- wrk script: client credentials with Basic auth, writing every access token it gets to
-- BENCH_OUT, one per line (subject tokens for ENDPOINT=exchange SUBJECTS=fresh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_SUBJECT_BASIC")
wrk.body = "grant_type=client_credentials"
local out = io.open(os.getenv("BENCH_OUT"), "a")

response = function(status, headers, body)
  local token = body:match('"access_token":"([^"]+)"')
  if token then
    out:write(token, "\n")
  end
end
