#!/usr/bin/env bash
# What a self-registration costs (RFC 7591): latency of POST /oauth2/register, one request at a
# time over a keep-alive connection, on a fresh store with open registration, and the rate that
# makes. Each registration is one write transaction (the cap counted, the client stored, the
# change feed and the audit trail written); the token endpoint is not involved.
#
#   bench/register.sh                # N=500; prints median and p90 in ms, and the rate
#   PG_URL=postgres://… bench/register.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
PORT=${PORT:-18394}
. bench/common.sh
require python3 curl
tessera_bin
scratch_dir
tessera_env
cat >>"$WORK/bench.toml" <<'TOML'

[registration]
mode = "open"
per_address_per_hour = 0
max_clients = 1000000
TOML
"$BIN" migrate --database "$DB" >/dev/null
"$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/server.log"
BASE="$BASE" N="$N" python3 - <<'PY'
import http.client, json, os, statistics, time, urllib.parse

base, n = os.environ["BASE"], int(os.environ["N"])
conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc)
body = json.dumps({
    "client_name": "bench agent",
    "redirect_uris": ["http://127.0.0.1/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "none",
})
times = []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    conn.request("POST", "/oauth2/register", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status == 201, r.status
    times.append((time.perf_counter() - t) * 1000)
total = time.perf_counter() - start
times.sort()
print(f"registrations={n} median_ms={statistics.median(times):.2f} p90_ms={times[int(n * 0.9)]:.2f} rate_per_s={n / total:.0f}")
PY
