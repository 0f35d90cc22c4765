#!/usr/bin/env bash
# Every figure in PERFORMANCE.md, RUNS times over (default 3) in one batch, so medians can be taken
# from runs made minutes apart on a machine whose speed drifts:
#
#   bench/suite.sh | tee suite.log
#
# Each run measures nginx's floor (bench/floor.sh) next to Tessera's token endpoint at 2 and 8
# connections, an imported secret, RS256, EdDSA, introspection, JWKS, and a million clients plus a
# million revoked ids; then, once, a million clients alone, ten clients, and the instructions per
# request. About 10 minutes. Needs what bench/token.sh, bench/floor.sh and bench/instructions.sh
# need.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
export DURATION=${DURATION:-5}
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p tessera
  BIN=$PWD/target/release/tessera
fi
export BIN
for i in $(seq "$RUNS"); do
  echo "== run $i"
  echo "-- nginx floor"; bench/floor.sh | tail -1
  echo "-- ES256"; bench/token.sh | tail -2
  echo "-- ES256 imported secret"; CONNS=8 SECRET=imported bench/token.sh | tail -1
  echo "-- RS256"; CONNS=8 ALG=RS256 bench/token.sh | tail -1
  echo "-- EdDSA"; CONNS=8 ALG=EdDSA bench/token.sh | tail -1
  echo "-- introspection"; CONNS=8 ENDPOINT=introspect bench/token.sh | tail -1
  echo "-- JWKS"; CONNS=8 ENDPOINT=jwks bench/token.sh | tail -1
  echo "-- 1,000,000 clients and revoked ids"; CONNS=8 CLIENTS=1000000 REVOKED=1000000 bench/token.sh | grep -v conns
done
echo "-- 1,000,000 clients"; CONNS=8 CLIENTS=1000000 bench/token.sh | grep -v conns
echo "-- 10 clients"; CONNS=8 CLIENTS=10 bench/token.sh | grep -v conns
echo "-- instructions per request"
bench/instructions.sh 2>/dev/null | grep instructions
ENDPOINT=introspect bench/instructions.sh 2>/dev/null | grep instructions
