// Tokens signed by an independent JOSE library (panva's jose), for tessera-verify to check:
// one per algorithm, each with a fresh key published without "alg" (bound by its type), as
// many issuers publish them. Prints {"jwks": {...}, "tokens": [{"alg", "token"}]} on one line.
import * as jose from 'jose';

const now = Math.floor(Date.now() / 1000);
const keys = [];
const tokens = [];
for (const [alg, options] of [
  ['RS256', {}], ['RS384', {}], ['PS256', {}], ['PS512', {}],
  ['ES256', {}], ['ES384', {}], ['EdDSA', { crv: 'Ed25519' }],
]) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, options);
  const kid = `jose-${alg}`;
  keys.push({ ...(await jose.exportJWK(publicKey)), kid, use: 'sig' });
  const token = await new jose.SignJWT({ client_id: 'svc-1', scope: 'orders:read orders:write', tenant: 'acme' })
    .setProtectedHeader({ alg, typ: 'at+jwt', kid })
    .setIssuer('https://issuer.example')
    .setSubject('svc-1')
    .setAudience(['https://other.example', 'https://api.example'])
    .setIssuedAt(now)
    .setNotBefore(now - 5)
    .setExpirationTime(now + 600)
    .setJti(`jti-${alg}`)
    .sign(privateKey);
  tokens.push({ alg, token });
}
console.log(JSON.stringify({ jwks: { keys }, tokens }));
