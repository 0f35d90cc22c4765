#!/usr/bin/env bash
# What signing people in costs at the token endpoint: latency of a code exchange and of a refresh
# (rotation included), one request at a time over a keep-alive connection, on a fresh store.
#
#   bench/sign_in.sh                 # N=300 of each; prints median and p90 in ms, and the rate
#   PG_URL=postgres://… bench/sign_in.sh
#
# One person signs in once through the login form (one Argon2id); each code then comes from the
# authorization endpoint with that session (no password, no page), so the figures are the code
# exchange and the refresh alone: a store write under the write lock each, an access token, an
# RS256 ID token, and a new refresh token.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
PORT=${PORT:-18393}
. bench/common.sh
require python3 curl
tessera_bin
scratch_dir
tessera_env
"$BIN" migrate --database "$DB" >/dev/null
printf '%s\n' "bench-password-1234" | "$BIN" user create --database "$DB" --email bench@example.com --password >/dev/null
create_client --grant-type authorization_code --grant-type refresh_token \
  --redirect-uri http://127.0.0.1:9/cb --first-party
"$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" --issuer "$BASE" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_ready "$WORK/server.log"
BASE="$BASE" ID="$ID" SEC="$SEC" N="$N" python3 - <<'PY'
import base64, hashlib, http.client, json, os, re, secrets, statistics, time, urllib.parse

base, cid, sec, n = os.environ["BASE"], os.environ["ID"], os.environ["SEC"], int(os.environ["N"])
host = urllib.parse.urlsplit(base).netloc
conn = http.client.HTTPConnection(host)
cookies = {}
basic = "Basic " + base64.b64encode(f"{cid}:{sec}".encode()).decode()

def req(method, path, body=None, headers=None):
    h = dict(headers or {})
    if cookies:
        h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    if body is not None:
        h["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(body)
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            cookies[name] = rest.split(";")[0]
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data

def authorize():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode({"response_type": "code", "client_id": cid, "redirect_uri": "http://127.0.0.1:9/cb",
        "scope": "openid offline_access", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    return verifier, req("GET", "/oauth2/authorize?" + q)

verifier, (status, _, page) = authorize()
fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.decode()))
status, headers, _ = req("POST", "/oauth2/login", {**fields, "email": "bench@example.com", "password": "bench-password-1234"})
assert status == 303, status

def code_from(headers):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(headers["location"]).query)["code"][0]

exchange, refresh, tokens = [], [], []
for _ in range(n):
    verifier, (status, headers, _) = authorize()
    assert status == 302, status
    form = {"grant_type": "authorization_code", "code": code_from(headers), "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": verifier}
    t = time.perf_counter()
    status, _, body = req("POST", "/oauth2/token", form, {"Authorization": basic})
    exchange.append(time.perf_counter() - t)
    assert status == 200, body
    tokens.append(json.loads(body)["refresh_token"])
for rt in tokens:
    t = time.perf_counter()
    status, _, body = req("POST", "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": rt}, {"Authorization": basic})
    refresh.append(time.perf_counter() - t)
    assert status == 200, body

def show(name, xs):
    xs = sorted(xs)
    print(f"{name}: median {statistics.median(xs)*1000:.2f} ms, p90 {xs[int(len(xs)*0.9)]*1000:.2f} ms, "
          f"{len(xs)/sum(xs):.0f}/s one at a time (n={len(xs)})")
show("code exchange", exchange)
show("refresh", refresh)
PY
