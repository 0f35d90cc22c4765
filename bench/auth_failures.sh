#!/usr/bin/env bash
# How long a wrong secret takes to be refused, for a client with a generated secret, a client with
# an imported (Argon2id) secret, and a client id that does not exist: the three must not differ
# by more than noise, or timing tells an attacker which ids exist.
#
#   bench/auth_failures.sh            # N=40 attempts each, interleaved; prints medians in ms
#
# The failure back-off is raised out of the way (it has its own tests); everything else is the
# default configuration, on a fresh SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-40}
PORT=${PORT:-18391}
. bench/common.sh
require python3 curl
tessera_bin
scratch_dir
tessera_env
cat >>"$WORK/bench.toml" <<'TOML'
failures_before_backoff = 1000
address_failures_before_backoff = 100000
TOML
"$BIN" migrate --database "$DB" >/dev/null
create_client
GEN=$ID
create_client --secret "an-imported-secret-for-timing"
IMP=$ID
"$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/server.log"
python3 - "$PORT" "$N" "$GEN" "$IMP" <<'PY'
import base64, http.client, statistics, sys, time
port, n, ids = int(sys.argv[1]), int(sys.argv[2]), {"generated": sys.argv[3], "imported": sys.argv[4], "unknown": "no-such-client"}
times = {k: [] for k in ids}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(n):
    for kind, cid in ids.items():
        auth = "Basic " + base64.b64encode(f"{cid}:wrong-secret".encode()).decode()
        t = time.perf_counter()
        conn.request("POST", "/oauth2/token", body="grant_type=client_credentials",
                     headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse(); r.read()
        times[kind].append((time.perf_counter() - t) * 1000)
        assert r.status == 401, r.status
for kind, ts in times.items():
    print(f"{kind:10s} median {statistics.median(ts):6.2f} ms  p10 {sorted(ts)[len(ts)//10]:6.2f}  p90 {sorted(ts)[len(ts)*9//10]:6.2f}")
PY
stop_server
