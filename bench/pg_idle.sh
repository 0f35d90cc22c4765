#!/usr/bin/env bash
# The load an idle cluster puts on PostgreSQL: NODES `tessera serve` processes on one fresh
# database (on the server at PG_URL, dropped afterwards), left alone for DURATION seconds.
# Prints the database's committed transactions per second, from pg_stat_database; every statement
# a node sends outside a transaction (its change-log poll, the pool's liveness check) is one.
#
#   PG_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres bench/pg_idle.sh
#   NODES=3 DURATION=30 BIN=target/release/tessera PG_URL=... bench/pg_idle.sh
# Needs: psql, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-3}
DURATION=${DURATION:-30}
PORT=${PORT:-18281}
: "${PG_URL:?set PG_URL to a PostgreSQL URL whose role may create databases}"

. bench/common.sh
require psql curl
tessera_bin
scratch_dir
tessera_env
"$BIN" migrate --database "$DB" >/dev/null

PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; cleanup; }
trap stop_all EXIT
for i in $(seq 1 "$NODES"); do
  port=$((PORT + i))
  "$BIN" serve --database "$DB" --listen "127.0.0.1:$port" --issuer "http://127.0.0.1:$PORT" \
    >"$WORK/node$i.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  BASE="http://127.0.0.1:$port" wait_ready "$WORK/node$i.log"
done
SERVER_PID=
sleep 3   # past start-up

xacts() {
  psql -At "$PG_URL" -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$PG_DB'"
}
psql -q "$PG_URL" -c "SELECT pg_stat_clear_snapshot()" >/dev/null
before=$(xacts)
sleep "$DURATION"
after=$(xacts)
awk -v a="$after" -v b="$before" -v d="$DURATION" -v n="$NODES" \
  'BEGIN { printf "nodes=%d duration_s=%d transactions_per_s=%.1f per_node=%.1f\n", n, d, (a - b) / d, (a - b) / d / n }'
