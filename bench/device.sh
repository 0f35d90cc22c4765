#!/usr/bin/env bash
# What device authorization costs (RFC 8628), one request at a time over a keep-alive
# connection, on a fresh store: starting a device request (POST /oauth2/device_authorization:
# one write), a poll while nobody has answered (the token endpoint: one write, the pace
# recorded), and the poll that gets the tokens once a person allowed it (the code spent and the
# refresh token stored in one write, then the access and ID tokens signed). The approvals go
# through the pages as a browser's would, untimed.
#
#   bench/device.sh                  # N=500 requests and polls, M=100 approvals
#   PG_URL=postgres://… bench/device.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
M=${M:-100}
PORT=${PORT:-18395}
. bench/common.sh
require python3 curl
tessera_bin
scratch_dir
tessera_env
"$BIN" migrate --database "$DB" >/dev/null
CLIENT=$("$BIN" client create --database "$DB" --name bench-device --public --scope "demo:read" \
  --grant-type urn:ietf:params:oauth:grant-type:device_code --grant-type refresh_token --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["client"]["client_id"])')
printf 'bench-password-1234\n' | "$BIN" user create --database "$DB" --email bench@example.com --password >/dev/null
"$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/server.log"
BASE="$BASE" N="$N" M="$M" CLIENT="$CLIENT" python3 - <<'PY'
import http.client, json, os, re, statistics, time, urllib.parse

base, n, m, client = os.environ["BASE"], int(os.environ["N"]), int(os.environ["M"]), os.environ["CLIENT"]
conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc)
form = {"Content-Type": "application/x-www-form-urlencoded"}
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"

def post(path, fields, headers=form):
    conn.request("POST", path, urllib.parse.urlencode(fields), headers)
    r = conn.getresponse()
    return r, r.read()

def timed(label, count, call):
    times = []
    start = time.perf_counter()
    for i in range(count):
        t = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - start
    times.sort()
    print(f"{label}: n={count} median_ms={statistics.median(times):.2f} p90_ms={times[int(count * 0.9)]:.2f} rate_per_s={count / total:.0f}")

started = []
def start(_):
    r, body = post("/oauth2/device_authorization", {"client_id": client, "scope": "openid demo:read"})
    assert r.status == 200, (r.status, body)
    started.append(json.loads(body))
timed("device_authorization", n, start)

def pending(i):
    r, body = post("/oauth2/token", {"client_id": client, "grant_type": DEVICE, "device_code": started[i]["device_code"]})
    assert r.status == 400 and json.loads(body)["error"] == "authorization_pending", body
timed("poll_pending", n, pending)

# A person allows the first M, through the pages (signed in once; the consent page each time).
jar = {}
def page(method, path, fields=None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    if fields is not None:
        headers.update(form)
    conn.request(method, path, urllib.parse.urlencode(fields) if fields is not None else None, headers)
    r = conn.getresponse()
    body = r.read().decode()
    for c in r.headers.get_all("Set-Cookie") or []:
        k, v = c.split(";", 1)[0].split("=", 1)
        jar[k] = v
    return body
hidden = lambda body, name: re.search(f'name="{name}" value="([^"]*)"', body).group(1)
for d in started[:m]:
    entry = page("GET", "/oauth2/device")
    body = page("POST", "/oauth2/device", {"csrf": hidden(entry, "csrf"), "user_code": d["user_code"]})
    if "<h1>Sign in</h1>" in body:
        body = page("POST", "/oauth2/login", {"request": hidden(body, "request"), "csrf": hidden(body, "csrf"),
                                             "email": "bench@example.com", "password": "bench-password-1234"})
    done = page("POST", "/oauth2/consent", {"request": hidden(body, "request"), "csrf": hidden(body, "csrf"), "decision": "allow"})
    assert "Device connected" in done, done[-400:]
time.sleep(5)  # the devices' interval since their first poll

def redeem(i):
    r, body = post("/oauth2/token", {"client_id": client, "grant_type": DEVICE, "device_code": started[i]["device_code"]})
    assert r.status == 200, body
    assert "id_token" in json.loads(body), body
timed("poll_tokens", m, redeem)
PY
