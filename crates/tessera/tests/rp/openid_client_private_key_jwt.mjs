// A machine client with no secret, built on openid-client (and oauth4webapi under it): discovery,
// then client credentials with `private_key_jwt` through openid-client's own `PrivateKeyJwt`,
// which signs each assertion with the client's private key for the issuer identifier as its
// audience. Two grants in a row prove each assertion is fresh (a `jti` is single use).
//
// Env: ISSUER CLIENT_ID PRIVATE_KEY_PEM ALG KID
// Output: one JSON object on the last stdout line; on failure {"error": ...} and exit status 1.
import * as client from 'openid-client';
import * as jose from 'jose';
import { readFileSync } from 'node:fs';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
}

try {
  const issuer = new URL(env('ISSUER'));
  const key = await jose.importPKCS8(env('PRIVATE_KEY_PEM'), env('ALG'));
  const config = await client.discovery(
    issuer,
    env('CLIENT_ID'),
    undefined,
    client.PrivateKeyJwt({ key, kid: env('KID') }),
    { execute: [client.allowInsecureRequests] },
  );
  const first = await client.clientCredentialsGrant(config);
  const second = await client.clientCredentialsGrant(config);
  const introspection = await client.tokenIntrospection(config, first.access_token);
  const pkg = JSON.parse(readFileSync(new URL('./node_modules/openid-client/package.json', import.meta.url)));
  console.log(JSON.stringify({
    library: 'openid-client',
    version: pkg.version,
    token_type: first.token_type,
    tokens_differ: first.access_token !== second.access_token,
    active: introspection.active,
    client_id: introspection.client_id,
  }));
} catch (e) {
  console.error(e);
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
}
