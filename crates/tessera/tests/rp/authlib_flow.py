#!/usr/bin/env python3
"""A CONFIDENTIAL client (a server-side web app: client_secret_basic, plus PKCE S256) built on
authlib runs the OpenID Connect authorization-code flow against Tessera. It proves that an
independent relying-party library accepts what the server says:
  - discovery, and the authorization response: state (authlib checks it) and `iss` (RFC 9207,
    checked here, since authlib does not);
  - the code exchange with HTTP Basic client authentication and the PKCE verifier;
  - the ID token: RS256 signature against the keys at the discovery document's jwks_uri, then
    authlib's CodeIDToken claim checks: iss, aud, exp, iat, nonce, azp, at_hash;
  - userinfo for the same subject (OIDC Core 5.3.2);
  - refresh-token rotation, and reuse detection: the old refresh token is refused, after which
    the new one is refused too (the whole family was revoked).
The login and consent pages are posted with a requests.Session that never follows redirects:
nothing listens at REDIRECT_URI, the code is read from the Location header.

Signature checking uses joserfc, the JOSE library authlib 1.9 itself uses for this (its own
authlib.jose module is deprecated in favour of joserfc).

Env: ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD [SCOPE]
Output: one JSON object on the last stdout line; on failure {"error": ...}, the reason on stderr,
and exit status 1.
"""

import html
import json
import os
import re
import sys
import traceback
from importlib.metadata import version
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

TIMEOUT = 20  # seconds, for every HTTP request


def env(name, default=None):
    value = os.environ.get(name) or default
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


# ---- the login and consent pages, posted as a browser would --------------------------------

TAG = r"""(?:"[^"]*"|'[^']*'|[^'">])*"""
ATTR = re.compile(r"""([^\s=<>/"']+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def attributes(tag):
    """name=value pairs of one tag, in any order, quoted either way or not at all."""
    return {
        m[1].lower(): html.unescape(next(v for v in m.groups()[1:] if v is not None))
        for m in ATTR.finditer(tag)
    }


def forms(page):
    out = []
    for m in re.finditer(rf"<form\b({TAG})>(.*?)</form>", page, re.I | re.S):
        fields, buttons = {}, [attributes(t) for t in re.findall(rf"<button\b{TAG}>", m[2], re.I)]
        for tag in re.findall(rf"<input\b{TAG}>", m[2], re.I):
            a = attributes(tag)
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                buttons.append(a)
            elif kind in ("checkbox", "radio") and not re.search(r"\schecked\b", tag, re.I):
                continue
            elif "name" in a:
                fields[a["name"]] = a.get("value", "")
        out.append({"action": attributes(m[1]).get("action"), "fields": fields, "buttons": buttons})
    return out


def sign_in(authorize_url, redirect_uri, email, password):
    """Walks login (and consent, when shown) until the server redirects to redirect_uri."""
    target = urlsplit(redirect_uri)
    browser = requests.Session()
    url = authorize_url
    res = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    consent_shown, logins = False, 0
    for _ in range(8):
        if 300 <= res.status_code < 400:
            location = urljoin(url, res.headers["Location"])
            loc = urlsplit(location)
            if (loc.scheme, loc.netloc, loc.path) == (target.scheme, target.netloc, target.path):
                return location, consent_shown
            url = location
            res = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
            continue
        if res.status_code != 200:
            raise RuntimeError(f"{url} answered {res.status_code}: {res.text[:500]}")
        page = forms(res.text)
        login = next((f for f in page if "password" in f["fields"]), None)
        consent = next(
            (f for f in page
             if any(b.get("name") == "decision" and b.get("value") == "allow" for b in f["buttons"])),
            None,
        )
        if login:
            logins += 1
            if logins > 1:
                raise RuntimeError(f"login page shown again after posting the credentials: {res.text[:500]}")
            form, extra = login, {"email": email, "password": password}
        elif consent:
            form, extra = consent, {"decision": "allow"}
            consent_shown = True
        else:
            raise RuntimeError(f"no login or consent form at {url}: {res.text[:500]}")
        url = urljoin(url, form["action"] or url)
        res = browser.post(url, data={**form["fields"], **extra}, allow_redirects=False, timeout=TIMEOUT)
    raise RuntimeError("too many steps between the authorization request and the callback")


# ---- the relying party ---------------------------------------------------------------------

def refusal(session, token_endpoint, refresh_token):
    """The error code of a refresh the server should refuse; None when it was accepted."""
    try:
        session.refresh_token(token_endpoint, refresh_token=refresh_token)
        return None
    except OAuthError as e:
        return e.error


def main():
    issuer = env("ISSUER")
    client_id = env("CLIENT_ID")
    redirect_uri = env("REDIRECT_URI")
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
    meta.raise_for_status()
    meta = meta.json()
    if meta.get("issuer") != issuer:
        raise RuntimeError(f"discovery issuer {meta.get('issuer')!r} is not {issuer!r}")

    # leeway=0 and no token_endpoint in the session: authlib must never refresh on its own,
    # the refreshes below are counted.
    session = OAuth2Session(
        client_id,
        env("CLIENT_SECRET"),
        scope=env("SCOPE", "openid profile email offline_access"),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        leeway=0,
        default_timeout=TIMEOUT,
    )
    code_verifier = generate_token(64)
    nonce = generate_token(32)
    authorize_url, state = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )

    callback, consent_shown = sign_in(authorize_url, redirect_uri, env("EMAIL"), env("PASSWORD"))
    returned = parse_qs(urlsplit(callback).query)
    if "error" in returned:
        raise RuntimeError(f"authorization refused: {returned}")
    if meta.get("authorization_response_iss_parameter_supported") and returned.get("iss") != [issuer]:
        raise RuntimeError(f"callback iss {returned.get('iss')} is not {issuer!r}")

    token_endpoint = meta["token_endpoint"]
    token = session.fetch_token(
        token_endpoint, authorization_response=callback, state=state, code_verifier=code_verifier
    )
    if "id_token" not in token:
        raise RuntimeError(f"no id_token in the token response: {sorted(token)}")

    jwks = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
    jwks.raise_for_status()
    decoded = jwt.decode(
        token["id_token"],
        KeySet.import_key_set(jwks.json()),
        registry=JWSRegistry(
            algorithms=meta.get("id_token_signing_alg_values_supported", ["RS256"]),
            strict_check_header=False,
        ),
    )
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "exp": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)

    userinfo = session.get(meta["userinfo_endpoint"])
    userinfo.raise_for_status()
    userinfo = userinfo.json()
    if userinfo.get("sub") != claims["sub"]:
        raise RuntimeError(f"userinfo sub {userinfo.get('sub')!r} is not the ID token's {claims['sub']!r}")

    old_refresh = token.get("refresh_token")
    if not old_refresh:
        raise RuntimeError(f"no refresh_token in the token response (scope: {token.get('scope')})")
    new_refresh = session.refresh_token(token_endpoint, refresh_token=old_refresh).get("refresh_token")
    old_refresh_error = refusal(session, token_endpoint, old_refresh)
    family_revoked_error = refusal(session, token_endpoint, new_refresh) if new_refresh else None

    return {
        "library": "authlib",
        "version": version("authlib"),
        "sub": claims["sub"],
        "id_token_claims": dict(claims),
        "userinfo": userinfo,
        "scope": token.get("scope"),
        "refresh_rotated": bool(new_refresh) and new_refresh != old_refresh,
        "old_refresh_error": old_refresh_error,
        "family_revoked_error": family_revoked_error,
        "consent_shown": consent_shown,
    }


if __name__ == "__main__":
    try:
        print(json.dumps(main()), flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        traceback.print_exc()
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
