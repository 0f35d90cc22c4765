// DPoP end to end with an independent client stack: openid-client (oauth4webapi under it)
// discovers Tessera, gets a DPoP-bound token with client credentials (its own proofs, answering
// a use_dpop_nonce challenge as RFC 9449 §8 says), then calls an API protected by
// tessera-verify with openid-client's fetchProtectedResource (proofs with ath, and the API's
// nonce challenge of §9 answered too), twice.
//
// Env: ISSUER CLIENT_ID CLIENT_SECRET API_URL
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
  const config = await client.discovery(
    new URL(env('ISSUER')),
    env('CLIENT_ID'),
    env('CLIENT_SECRET'),
    undefined,
    { execute: [client.allowInsecureRequests] },
  );
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);
  const tokens = await client.clientCredentialsGrant(config, {}, { DPoP });
  const calls = [];
  for (let i = 0; i < 2; i++) {
    const r = await client.fetchProtectedResource(
      config, tokens.access_token, new URL(env('API_URL')), 'GET', undefined, undefined, { DPoP },
    );
    calls.push({ status: r.status, body: r.status === 200 ? await r.json() : await r.text() });
  }
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey));
  const pkg = JSON.parse(readFileSync(new URL('./node_modules/openid-client/package.json', import.meta.url)));
  console.log(JSON.stringify({
    library: 'openid-client',
    version: pkg.version,
    token_type: tokens.token_type,
    jkt,
    calls,
  }));
} catch (e) {
  console.error(e);
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
}
