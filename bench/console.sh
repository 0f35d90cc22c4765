#!/usr/bin/env bash
# How fast the admin console's lists answer on a big store: ROWS clients, ROWS users and ROWS
# audit events (1,000,000 each by default), an admin signed in through the console's own
# sign-in, then each list and search page fetched RUNS times over a keep-alive connection;
# prints the median and p90 in ms per page. Pages are served by index ranges (keyset paging,
# prefix ranges), never a count of a table.
#
#   bench/console.sh                     # SQLite, ROWS=1000000 RUNS=20
#   PG_URL=postgres://… bench/console.sh # PostgreSQL
# Needs: sqlite3 (or psql with PG_URL), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-20}
PORT=${PORT:-18396}
. bench/common.sh
require python3 curl
[ -n "${PG_URL:-}" ] || require sqlite3
tessera_bin
scratch_dir
tessera_env
"$BIN" migrate --database "$DB" >/dev/null

echo "filling the store with $ROWS clients, users and audit events…" >&2
t0=$(date +%s)
if [ -n "${PG_DB:-}" ]; then
  store_sql <<SQL
INSERT INTO clients (id, name, name_key, scopes, audiences, token_ttl, enabled, created_at, updated_at, can_introspect, tokens_revoked_before)
SELECT format('bench-%s', lpad(i::text, 8, '0')), format('Service %s', lpad((i::bigint * 7919 % $ROWS)::text, 8, '0')),
       format('service %s', lpad((i::bigint * 7919 % $ROWS)::text, 8, '0')), 'demo:read', '[]', 3600, true, 0, 0, false, 0
FROM generate_series(1, $ROWS) AS i;
INSERT INTO users (id, email, email_key, email_verified, enabled, attributes, created_at, updated_at)
SELECT format('user-%s', lpad(i::text, 8, '0')), format('person%s@example.com', lpad((i::bigint * 7919 % $ROWS)::text, 8, '0')),
       format('person%s@example.com', lpad((i::bigint * 7919 % $ROWS)::text, 8, '0')), true, true, '{}', 0, 0
FROM generate_series(1, $ROWS) AS i;
INSERT INTO audit_events (at, actor, source, action, target, details)
SELECT 1700000000 + i, format('user:user-%s', lpad((i % 1000)::text, 8, '0')), '127.0.0.1',
       (ARRAY['client.create','client.update','user.create','key.rotate'])[1 + i % 4],
       format('bench-%s', lpad((i % $ROWS + 1)::text, 8, '0')), '{}'
FROM generate_series(1, $ROWS) AS i;
ANALYZE;
SQL
else
  store_sql <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO clients (id, name, name_key, scopes, audiences, token_ttl, enabled, created_at, updated_at, can_introspect, tokens_revoked_before)
SELECT printf('bench-%08d', i), printf('Service %08d', i * 7919 % $ROWS), printf('service %08d', i * 7919 % $ROWS),
       'demo:read', '[]', 3600, 1, 0, 0, 0, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO users (id, email, email_key, email_verified, enabled, attributes, created_at, updated_at)
SELECT printf('user-%08d', i), printf('person%08d@example.com', i * 7919 % $ROWS), printf('person%08d@example.com', i * 7919 % $ROWS),
       1, 1, '{}', 0, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO audit_events (at, actor, source, action, target, details)
SELECT 1700000000 + i, printf('user:user-%08d', i % 1000), '127.0.0.1',
       CASE i % 4 WHEN 0 THEN 'client.create' WHEN 1 THEN 'client.update' WHEN 2 THEN 'user.create' ELSE 'key.rotate' END,
       printf('bench-%08d', i % $ROWS + 1), '{}' FROM n;
COMMIT;
ANALYZE;
SQL
fi
echo "filled in $(( $(date +%s) - t0 )) s" >&2

printf 'bench-console-password\n' | "$BIN" user create --database "$DB" --email admin@bench.example --password >/dev/null
"$BIN" user update --database "$DB" admin@bench.example --role admin >/dev/null
"$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/server.log"
BASE="$BASE" RUNS="$RUNS" ROWS="$ROWS" python3 - <<'PY'
import http.client, os, re, statistics, time, urllib.parse

base, runs, rows = os.environ["BASE"], int(os.environ["RUNS"]), int(os.environ["ROWS"])
conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc)
jar = {}

def request(method, url, fields=None):
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    body = None
    if fields is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(fields)
    conn.request(method, path, body, headers)
    r = conn.getresponse()
    text = r.read().decode()
    for c in r.headers.get_all("Set-Cookie") or []:
        k, v = c.split(";", 1)[0].split("=", 1)
        if v:
            jar[k] = v
        else:
            jar.pop(k, None)
    return r.status, r.headers.get("Location"), text

def follow(status, location, text):
    while status in (302, 303):
        status, location, text = request("GET", urllib.parse.urljoin(base, location))
    return status, text

status, text = follow(*request("GET", base + "/console"))
hidden = lambda name: re.search(f'name="{name}" value="([^"]*)"', text).group(1)
status, text = follow(*request("POST", base + "/oauth2/login", {
    "request": hidden("request"), "csrf": hidden("csrf"),
    "email": "admin@bench.example", "password": "bench-console-password"}))
assert status == 200 and "<h1>Overview</h1>" in text, text[:300]

middle = f"service {rows // 2:08d}"
pages = [
    ("overview", "/console"),
    ("clients, first page", "/console/clients"),
    ("clients, a page in the middle", f"/console/clients?after_name={urllib.parse.quote(middle)}&after_id=bench-00000001"),
    ("clients, search by name", f"/console/clients?q={urllib.parse.quote(f'Service {rows // 3:08d}'[:-2])}"),
    ("clients, search by id", f"/console/clients?q=bench-{rows // 20:08d}"[:-2]),
    ("client", "/console/clients/bench-00000042"),
    ("users, first page", "/console/users"),
    ("users, search by email", f"/console/users?q=person{rows // 7:08d}"[:-2]),
    ("user", "/console/users/user-00000042"),
    ("audit, newest", "/console/audit"),
    ("audit, older page", f"/console/audit?before={rows // 2}"),
    ("audit, by who", "/console/audit?actor=user%3Auser-00000500"),
    ("audit, by event", "/console/audit?action=key.rotate"),
    ("audit, by client", f"/console/audit?target=bench-{rows // 3:08d}"),
    ("audit, a day", "/console/audit?since=2023-11-15&until=2023-11-15"),
    ("keys", "/console/keys"),
]
for name, path in pages:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        status, _, body = request("GET", base + path)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, (name, status, body[:300])
    times.sort()
    print(f"{name:32s} median_ms={statistics.median(times):7.2f} p90_ms={times[int(len(times) * 0.9) - 1]:7.2f} bytes={len(body)}")
PY
