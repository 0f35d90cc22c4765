#!/usr/bin/env bash
# Token-endpoint benchmark for Tessera. Reproducible on any Linux machine with 2+ cores:
#
#   bench/token.sh                      # ES256, generated secret, 2 and 8 connections
#   ALG=RS256 bench/token.sh
#   SECRET=imported bench/token.sh      # an Argon2id-hashed imported secret
#   AUTH=private_key_jwt bench/token.sh # no secret: a fresh ES256 assertion per request
#   AUTH=federated bench/token.sh       # no secret: a platform token a trust policy admits
#   TOKEN_TYPES="Bearer DPoP" bench/token.sh  # each run also with a fresh DPoP proof per request
#   CLIENTS=1000000 REVOKED=1000000 bench/token.sh
#   ENDPOINT=introspect bench/token.sh  # or ENDPOINT=jwks
#   ENDPOINT=exchange bench/token.sh    # token exchange (RFC 8693): one access token, impersonated
#   ENDPOINT=exchange SUBJECTS=fresh bench/token.sh  # a different subject token each time
#   BIN=/path/to/tessera bench/token.sh # an already built binary (A/B comparisons)
#   PG_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres bench/token.sh   # on PostgreSQL
#
# It builds a release binary, starts `tessera serve` on a fresh store (SQLite, or PostgreSQL with
# PG_URL: a new database on that server, dropped afterwards) pinned to one core
# (SERVER_CPU, default 0), and drives it with wrk pinned to another (LOAD_CPU, default 1) for
# DURATION seconds per connection count (CONNS). For each run it prints tokens/s, p50 and p99
# latency, the non-200 count, the server's CPU time per request, its RSS after the run and its peak RSS.
# Needs: wrk, sqlite3, curl, taskset (Debian: apt-get install wrk sqlite3 curl util-linux), and
# psql with PG_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

ALG=${ALG:-ES256}
SECRET=${SECRET:-generated}
AUTH=${AUTH:-secret}
ASSERTIONS=${ASSERTIONS:-150000}
CONNS=${CONNS:-"2 8"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-0}
REVOKED=${REVOKED:-0}
ENDPOINT=${ENDPOINT:-token}
TOKEN_TYPES=${TOKEN_TYPES:-Bearer}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-18181}

. bench/common.sh
require wrk sqlite3 curl taskset
tessera_bin
scratch_dir
tessera_env

start_server() {
  local t0 t1
  t0=$(date +%s%N)
  taskset -c "$SERVER_CPU" "$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" \
    --signing-alg "$ALG" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "$WORK/server.log"
  t1=$(date +%s%N)
  STARTUP_MS=$(( (t1 - t0) / 1000000 ))
}

# First start creates the schema and the signing key.
start_server
stop_server

if [ "$CLIENTS" -gt 0 ] || [ "$REVOKED" -gt 0 ]; then
  # Registered clients and revoked token ids that the hot path must not be slowed by.
  hash=$(printf 'not-a-real-secret' | sha256sum | cut -d' ' -f1)
  if [ -n "${PG_DB:-}" ]; then
    store_sql <<SQL
BEGIN;
INSERT INTO clients (id, name, scopes, audiences, token_ttl, enabled, created_at, updated_at, can_introspect, tokens_revoked_before)
SELECT format('bench-%s', lpad(i::text, 8, '0')), 'bench', 'demo:read demo:write', '[]', 3600, true, 0, 0, false, 0
FROM generate_series(1, $CLIENTS) AS i;
INSERT INTO client_secrets (id, client_id, kind, hash, created_at, expires_at)
SELECT format('secret-%s', lpad(i::text, 8, '0')), format('bench-%s', lpad(i::text, 8, '0')), 'sha256', '$hash', 0, NULL
FROM generate_series(1, $CLIENTS) AS i;
INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at)
SELECT lpad(i::text, 21, '0') || 'A', 'bench-00000001', 4102444800, 0 FROM generate_series(1, $REVOKED) AS i;
COMMIT;
SQL
  else
    store_sql <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $CLIENTS)
INSERT INTO clients (id, name, scopes, audiences, token_ttl, enabled, created_at, updated_at, can_introspect, tokens_revoked_before)
SELECT printf('bench-%08d', i), 'bench', 'demo:read demo:write', '[]', 3600, 1, 0, 0, 0, 0 FROM n WHERE $CLIENTS > 0;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $CLIENTS)
INSERT INTO client_secrets (id, client_id, kind, hash, created_at, expires_at)
SELECT printf('secret-%08d', i), printf('bench-%08d', i), 'sha256', '$hash', 0, NULL FROM n WHERE $CLIENTS > 0;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $REVOKED)
INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at)
SELECT printf('%021dA', i), 'bench-00000001', 4102444800, 0 FROM n WHERE $REVOKED > 0;
COMMIT;
SQL
  fi
fi

case "$AUTH" in
  secret)
    if [ "$SECRET" = imported ]; then
      create_client --secret "bench-imported-secret-0123456789"
    else
      create_client
    fi
    export BENCH_BASIC
    BENCH_BASIC=$(printf '%s:%s' "$ID" "$SEC" | base64 -w0)
    ;;
  private_key_jwt | federated)
    # The client's key pair (openssl), and the example that signs JWTs with it as a client would.
    require openssl
    cargo build --release -q -p tessera-client --example assertions
    MINT=$PWD/target/release/examples/assertions
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/client.pem" 2>/dev/null
    openssl pkey -in "$WORK/client.pem" -pubout -out "$WORK/client.pub.pem"
    export BENCH_CLIENT_ID
    if [ "$AUTH" = private_key_jwt ]; then
      create_client --auth-method private_key_jwt --public-key-file "$WORK/client.pub.pem"
      BENCH_CLIENT_ID=$ID
      # Fresh assertions for every wrk run, each used once (a replay would show as non-200).
      fresh_assertions() {
        "$MINT" "$WORK/client.pem" "$ID" "$ID" "$BASE" "$1" >"$WORK/assertions.txt"
        export BENCH_ASSERTIONS="$WORK/assertions.txt"
      }
    else
      create_client --auth-method private_key_jwt
      BENCH_CLIENT_ID=$ID
      subject="repo:acme/bench:ref:refs/heads/main"
      printf '{"keys":[%s]}' "$(PUBLIC_JWK=1 "$MINT" "$WORK/client.pem" x x x 0 ci-1)" >"$WORK/issuer.json"
      "$BIN" trust create --database "$DB" --name bench --issuer https://ci.bench.example \
        --jwks-file "$WORK/issuer.json" --audience "$BASE" --subject "$subject" --client "$ID" >/dev/null
      token=$("$MINT" "$WORK/client.pem" https://ci.bench.example "$subject" "$BASE" 1 ci-1)
      export BENCH_BODY="grant_type=client_credentials&client_id=$ID&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$token"
    fi
    ;;
  *) echo "bench: unknown AUTH $AUTH" >&2; exit 1 ;;
esac

case " $TOKEN_TYPES " in
  *" DPoP "*)
    [ "$AUTH" = secret ] && [ "$ENDPOINT" = token ] || { echo "bench: DPoP with AUTH=secret ENDPOINT=token only" >&2; exit 1; }
    # The client's DPoP key (openssl), and the example that makes proofs with it as a client would.
    require openssl
    cargo build --release -q -p tessera-client --example assertions
    MINT=$PWD/target/release/examples/assertions
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/dpop.pem" 2>/dev/null
    # Fresh proofs for every wrk run, each used once (a replay would show as non-200); made just
    # before the run, as a proof is accepted for two minutes after its iat.
    fresh_proofs() {
      DPOP_HTU="$BASE/oauth2/token" "$MINT" "$WORK/dpop.pem" x x x "$1" >"$WORK/proofs.txt"
      export BENCH_PROOFS="$WORK/proofs.txt"
    }
    ;;
esac

start_server
echo "# store=$(if [ -n "${PG_DB:-}" ]; then echo postgres; else echo sqlite; fi) alg=$ALG auth=$AUTH secret=$SECRET endpoint=$ENDPOINT clients=$CLIENTS revoked=$REVOKED startup_ms=$STARTUP_MS"

case "$ENDPOINT" in
  token)
    URL="$BASE/oauth2/token"
    if [ "$AUTH" = secret ]; then SCRIPT=bench/token.lua; unset BENCH_BODY; else SCRIPT=bench/assertions.lua; fi ;;
  introspect)
    token=$(curl -s -u "$ID:$SEC" -d grant_type=client_credentials "$BASE/oauth2/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    export BENCH_BODY="token=$token"; URL="$BASE/oauth2/introspect"; SCRIPT=bench/token.lua ;;
  jwks) URL="$BASE/.well-known/jwks.json"; SCRIPT=bench/get.lua ;;
  exchange)
    # A second client exchanges the bench client's token (the same subject token every time:
    # an exchange spends nothing) for one for another API, as its subject.
    xc=$("$BIN" client create --database "$DB" --name exchanger --scope "demo:read demo:write" \
      --grant-type urn:ietf:params:oauth:grant-type:token-exchange --exchange-audience https://api.example \
      --exchange-subject-audience "$BASE" --exchange-impersonation --json)
    XID=$(printf '%s' "$xc" | sed -E 's/.*"client_id":"([^"]+)".*/\1/')
    XSEC=$(printf '%s' "$xc" | sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
    token=$(curl -s -u "$ID:$SEC" -d grant_type=client_credentials "$BASE/oauth2/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    export BENCH_BASIC BENCH_BODY
    BENCH_BASIC=$(printf '%s:%s' "$XID" "$XSEC" | base64 -w0)
    BENCH_BODY="grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=$token&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
    URL="$BASE/oauth2/token"; SCRIPT=bench/token.lua
    if [ "${SUBJECTS:-same}" = fresh ]; then
      # More subject tokens than the node's cache of checked tokens holds (10,000), collected
      # from the token endpoint by wrk itself; each request exchanges the next one.
      SCRIPT=bench/assertions.lua
      export BENCH_SUBJECT_BASIC BENCH_OUT="$WORK/subjects.txt" BENCH_ASSERTIONS="$WORK/subjects.txt"
      export BENCH_PREFIX="${BENCH_BODY%%&subject_token=*}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&subject_token="
      BENCH_SUBJECT_BASIC=$(printf '%s:%s' "$ID" "$SEC" | base64 -w0)
      taskset -c "$LOAD_CPU" wrk -t1 -c4 -d3s -s bench/collect.lua "$URL" >/dev/null
      echo "# subject tokens: $(wc -l <"$BENCH_OUT")"
    fi
    # The running node learns of the new client at its next poll (10 s at most).
    for try in $(seq 1 50); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $BENCH_BASIC" \
        --data "$BENCH_BODY" "$URL")" = 200 ] && break
      [ "$try" = 50 ] && { echo "bench: the exchange never succeeded" >&2; exit 1; }
      sleep 0.2
    done ;;
  *) echo "bench: unknown ENDPOINT $ENDPOINT" >&2; exit 1 ;;
esac

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
HZ=$(getconf CLK_TCK)

# Warm-up (connections, caches, and the Argon2id verification for an imported secret).
[ "$AUTH" = private_key_jwt ] && fresh_assertions $((ASSERTIONS / 4))
taskset -c "$LOAD_CPU" wrk -t1 -c8 -d"${WARMUP}s" -s "$SCRIPT" "$URL" >/dev/null

printf '%-6s %-6s %12s %10s %10s %8s %14s %12s %12s\n' type conns req_per_s p50_us p99_us non200 cpu_us_per_req rss_kib peak_rss_kib
for c in $CONNS; do
 for type in $TOKEN_TYPES; do
  [ "$AUTH" = private_key_jwt ] && fresh_assertions "$ASSERTIONS"
  run_script=$SCRIPT
  if [ "$type" = DPoP ]; then fresh_proofs "$ASSERTIONS"; run_script=bench/dpop.lua; fi
  before=$(cpu_ticks)
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$c" -d"${DURATION}s" -s "$run_script" "$URL")
  after=$(cpu_ticks)
  line=$(printf '%s\n' "$out" | grep '^RESULT')
  val() { printf '%s\n' "$line" | sed -E "s/.* $1=([0-9]+).*/\1/"; }
  req=$(val requests); dur=$(val duration_us); p50=$(val p50_us); p99=$(val p99_us)
  errs=$(( $(val socket_errors) + $(val status_errors) ))
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  awk -v req="$req" -v dur="$dur" -v p50="$p50" -v p99="$p99" -v errs="$errs" -v rss="$rss" -v peak="$peak" \
      -v ticks=$((after - before)) -v hz="$HZ" -v c="$c" -v type="$type" 'BEGIN {
    printf "%-6s %-6d %12.0f %10d %10d %8d %14.1f %12d %12d\n", type, c, req / (dur / 1e6), p50, p99, errs,
      (ticks / hz) * 1e6 / req, rss, peak }'
 done
done
