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
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }

# DB and BASE: a fresh SQLite store in WORK and the address Tessera serves it on (PORT), with the
# settings every benchmark uses.
tessera_env() {
  DB="sqlite:$WORK/tessera.db"
  BASE="http://127.0.0.1:$PORT"
  export TESSERA_BOOTSTRAP=false TESSERA_LOG=warn TESSERA_KEY_ROTATION_INTERVAL=off
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
