#!/usr/bin/env python3
"""A machine client with no secret, built on authlib: client credentials with `private_key_jwt`
(RFC 7523 §2.2) through authlib's own `PrivateKeyJWT` client-authentication method, which signs
each assertion with the client's private key and names the token endpoint URL as its audience.
Two tokens in a row prove that every assertion is fresh (a `jti` is single use); introspection
with a third assertion proves the method works at the other endpoints.

Env: ISSUER CLIENT_ID PRIVATE_KEY_PEM ALG KID (the private key as PKCS#8 PEM)
Output: one JSON object on the last stdout line; on failure {"error": ...}, the reason on stderr,
and exit status 1.
"""

import json
import os
import sys
import traceback
from importlib.metadata import version

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, OKPKey, RSAKey

TIMEOUT = 20


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def main():
    issuer = env("ISSUER")
    meta = requests.get(issuer + "/.well-known/oauth-authorization-server", timeout=TIMEOUT).json()
    token_endpoint = meta["token_endpoint"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"], meta
    alg = env("ALG")
    # authlib reads a PEM as an RSA key; other kinds are given as joserfc keys.
    kind = {"RS256": RSAKey, "PS256": RSAKey, "ES256": ECKey, "ES384": ECKey, "EdDSA": OKPKey}[alg]
    auth = PrivateKeyJWT(token_endpoint, alg=alg, headers={"kid": env("KID")})
    session = OAuth2Session(
        env("CLIENT_ID"),
        kind.import_key(env("PRIVATE_KEY_PEM")),
        token_endpoint_auth_method=auth,
    )
    first = session.fetch_token(token_endpoint, grant_type="client_credentials", timeout=TIMEOUT)
    second = session.fetch_token(token_endpoint, grant_type="client_credentials", timeout=TIMEOUT)
    # The same method at the introspection endpoint: authlib signs for the token endpoint URL it
    # was given (OpenID Connect Core §9), which Tessera accepts at every endpoint.
    active = session.introspect_token(
        meta["introspection_endpoint"], token=first["access_token"], timeout=TIMEOUT
    ).json()
    print(json.dumps({
        "library": "authlib",
        "version": version("authlib"),
        "token_type": first["token_type"],
        "tokens_differ": first["access_token"] != second["access_token"],
        "active": active.get("active"),
        "client_id": active.get("client_id"),
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        print(json.dumps({"error": str(e)}))
        sys.exit(1)
