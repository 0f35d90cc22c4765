#!/usr/bin/env bash
# Instructions the server executes per request, counted by callgrind: a figure that does not drift
# with the machine's speed, for A/B comparisons of hot-path changes (`BIN=old … ; BIN=new …`).
#
#   bench/instructions.sh                    # ES256 token requests
#   ALG=EdDSA ENDPOINT=introspect bench/instructions.sh
#   TOP=25 bench/instructions.sh             # also the 25 costliest functions (self cost)
#   OUT=/tmp/cg.out bench/instructions.sh    # keep the callgrind profile (callgrind_annotate, kcachegrind)
#
# It starts `tessera serve` under valgrind on a fresh SQLite store, sends WARMUP requests over one
# keep-alive connection, zeroes the counters, sends REQUESTS more, and divides the instructions
# counted by REQUESTS. User space only: the kernel's share (TCP, wake-ups) is not counted, and
# valgrind's CPU may select other assembly paths in the crypto library than the real CPU does.
# Needs: valgrind, python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

ALG=${ALG:-ES256}
ENDPOINT=${ENDPOINT:-token}
REQUESTS=${REQUESTS:-1000}
WARMUP=${WARMUP:-200}
TOP=${TOP:-0}
PORT=${PORT:-18182}

. bench/common.sh
require valgrind callgrind_control callgrind_annotate python3 curl
tessera_bin
scratch_dir
tessera_env

"$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" --signing-alg "$ALG" \
  >"$WORK/first.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/first.log"
stop_server
create_client

valgrind --tool=callgrind --collect-atstart=yes --callgrind-out-file="$WORK/cg.out" \
  "$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" --signing-alg "$ALG" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/server.log"

BODY="grant_type=client_credentials"
case "$ENDPOINT" in
  token) PATH_=/oauth2/token ;;
  introspect)
    token=$(curl -s -u "$ID:$SEC" -d grant_type=client_credentials "$BASE/oauth2/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    BODY="token=$token"; PATH_=/oauth2/introspect ;;
  *) echo "bench: unknown ENDPOINT $ENDPOINT" >&2; exit 1 ;;
esac

send() {
  python3 - "$PORT" "$PATH_" "$ID" "$SEC" "$BODY" "$1" <<'PY'
import base64, http.client, sys
port, path, cid, sec, body, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
auth = "Basic " + base64.b64encode(f"{cid}:{sec}".encode()).decode()
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
for _ in range(n):
    conn.request("POST", path, body=body, headers={
        "Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"bench: HTTP {r.status}")
PY
}

send "$WARMUP"
callgrind_control -z "$SERVER_PID" >/dev/null
send "$REQUESTS"
callgrind_control -d "$SERVER_PID" >/dev/null
stop_server

dump=$(ls -t "$WORK"/cg.out.* | head -1)
[ -n "${OUT:-}" ] && cp "$dump" "$OUT"
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
echo "# alg=$ALG endpoint=$ENDPOINT requests=$REQUESTS"
awk -v t="$total" -v n="$REQUESTS" 'BEGIN { printf "instructions_per_request %.0f\n", t / n }'
if [ "$TOP" -gt 0 ]; then
  callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null | awk '/^-+$/ {s++} s>=3 && /[0-9] / && !/\(100\.0%\)|\(99\./' | head -n "$TOP" |
    awk -v n="$REQUESTS" '{ c=$1; gsub(",", "", c); $1=""; printf "%10.0f %s\n", c / n, substr($0, 1, 140) }'
fi
