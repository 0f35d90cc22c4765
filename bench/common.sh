# Shared by the bench scripts, which source it: tool checks, the binary, a scratch folder and
# store that are removed on exit, server start/stop, and the benchmark's client.

# Fails unless every named tool is installed.
require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
  done
}

# BIN: the binary given in BIN, or a fresh release build.
tessera_bin() {
  if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p tessera
    BIN=$PWD/target/release/tessera
  fi
}

# WORK: a scratch folder, removed on exit together with the server SERVER_PID, if running.
scratch_dir() {
  WORK=$(mktemp -d)
  SERVER_PID=
  trap cleanup EXIT
}
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null
  [ -n "${PG_DB:-}" ] && psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1
  rm -rf "$WORK"
}

# DB and BASE: a fresh store and the address Tessera serves it on (PORT), with the settings every
# benchmark uses. The store is an SQLite file in WORK, or with PG_URL (a PostgreSQL URL whose role
# may create databases) a fresh PostgreSQL database, dropped on exit, with a master key in the
# environment.
tessera_env() {
  if [ -n "${PG_URL:-}" ]; then
    require psql
    PG_DB="tessera_bench_$$"
    psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
    DB=$(printf '%s' "$PG_URL" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$PG_DB#")
    TESSERA_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
    export TESSERA_MASTER_KEY
  else
    DB="sqlite:$WORK/tessera.db"
  fi
  BASE="http://127.0.0.1:$PORT"
  # The load comes from one address and one client: the abuse limits are raised out of its way
  # (not turned off, so that their cost per request is measured too).
  cat >"$WORK/bench.toml" <<'TOML'
[limits]
per_address_rps = 1000000
per_address_burst = 1000000
per_client_rps = 1000000
per_client_burst = 1000000
max_concurrent_requests = 1000000
TOML
  export TESSERA_CONFIG="$WORK/bench.toml"
  export TESSERA_BOOTSTRAP=false TESSERA_LOG=warn TESSERA_KEY_ROTATION_INTERVAL=off
}

# Runs SQL (standard input) on the store: sqlite3 on the file, or psql on PostgreSQL.
store_sql() {
  if [ -n "${PG_DB:-}" ]; then psql -q -v ON_ERROR_STOP=1 "$DB" >/dev/null; else sqlite3 "$WORK/tessera.db"; fi
}

# Waits until the server answers on BASE; if SERVER_PID dies first, prints its log ($1) and fails.
wait_ready() {
  until curl -sf "$BASE/healthz" >/dev/null 2>&1; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$1" >&2; exit 1; }
    sleep 0.02
  done
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# ID and SEC: a new client "bench" in DB; extra arguments go to `tessera client create`.
create_client() {
  local created
  created=$("$BIN" client create --database "$DB" --name bench --scope "demo:read demo:write" --json "$@")
  ID=$(printf '%s' "$created" | sed -E 's/.*"client_id":"([^"]+)".*/\1/')
  SEC=$(printf '%s' "$created" | sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
}
