#!/usr/bin/env bash
# The HTTP floor on this machine, now: nginx answering the benchmark's token request with a
# token-sized JSON body from memory, measured exactly as bench/token.sh measures Tessera (server
# pinned to SERVER_CPU, wrk on LOAD_CPU, the same request, CPU time from /proc). Adding one
# bare signature (cargo bench -p tessera --bench hot_path -- sign) gives the least CPU a token
# can cost here; run it next to bench/token.sh, since this machine's speed drifts.
#
#   bench/floor.sh
#
# Needs: nginx, wrk, taskset (Debian: apt-get install nginx-light wrk util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-8}
DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-18183}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

. bench/common.sh
require wrk taskset "$NGINX"
scratch_dir

# A body the size of a Tessera ES256 token response.
token=$(head -c 450 /dev/zero | tr '\0' 'A')
body="{\"access_token\":\"$token\",\"token_type\":\"Bearer\",\"expires_in\":3600,\"scope\":\"demo:read demo:write\"}"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK;
  server {
    listen 127.0.0.1:$PORT;
    location / {
      default_type application/json;
      add_header Cache-Control no-store;
      return 200 '$body';
    }
  }
}
CONF
taskset -c "$SERVER_CPU" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK" &
SERVER_PID=$!
sleep 0.5
export BENCH_BASIC=YmVuY2g6YmVuY2g=
URL="http://127.0.0.1:$PORT/oauth2/token"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
HZ=$(getconf CLK_TCK)
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/token.lua "$URL" >/dev/null
before=$(cpu_ticks)
out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/token.lua "$URL")
after=$(cpu_ticks)
line=$(printf '%s\n' "$out" | grep '^RESULT')
val() { printf '%s\n' "$line" | sed -E "s/.* $1=([0-9]+).*/\1/"; }
echo "# nginx $("$NGINX" -v 2>&1 | sed 's/.*\///'), a ${#body}-byte JSON answer"
printf '%-6s %12s %10s %10s %8s %14s\n' conns req_per_s p50_us p99_us non200 cpu_us_per_req
awk -v req="$(val requests)" -v dur="$(val duration_us)" -v p50="$(val p50_us)" -v p99="$(val p99_us)" \
    -v errs=$(( $(val socket_errors) + $(val status_errors) )) -v ticks=$((after - before)) -v hz="$HZ" \
    -v c="$CONNS" 'BEGIN { printf "%-6d %12.0f %10d %10d %8d %14.1f\n", c, req / (dur / 1e6), p50, p99, errs, (ticks / hz) * 1e6 / req }'
