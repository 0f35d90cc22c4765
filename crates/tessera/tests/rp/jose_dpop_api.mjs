// An API that checks DPoP-bound tokens with an independent JOSE library (jose), written from
// RFC 9449 §7 and nothing of Tessera's: the access token against the issuer's published keys
// (typ at+jwt, issuer, audience), the proof under the DPoP scheme (typ dpop+jwt, signature by
// its embedded public key, htm, htu, iat, ath, a jti used once, a nonce this API issued), and
// the proof key's RFC 7638 thumbprint equal to the token's cnf.jkt. The first request of a
// client is answered with a use_dpop_nonce challenge.
//
// Env: ISSUER AUDIENCE
// Prints {"port": N} once listening; serves GET /invoices until killed.
import * as jose from 'jose';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const issuer = process.env.ISSUER;
const audience = process.env.AUDIENCE;
const meta = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
const keys = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
const nonce = randomBytes(16).toString('base64url');
const seen = new Set();
let port;

function refuse(res, error, description) {
  res.writeHead(401, {
    'www-authenticate': `DPoP error="${error}", error_description="${description}", algs="ES256 EdDSA"`,
    'dpop-nonce': nonce,
    'content-type': 'application/json',
  });
  res.end(JSON.stringify({ error, description }));
}

const server = createServer(async (req, res) => {
  try {
    const [scheme, token] = (req.headers.authorization ?? '').split(' ');
    if (scheme !== 'DPoP' || !token) return refuse(res, 'invalid_token', 'a DPoP-bound token is required');
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') return refuse(res, 'invalid_dpop_proof', 'one DPoP header');
    const { payload: claims } = await jose.jwtVerify(token, keys, { issuer, audience, typ: 'at+jwt' });
    const { payload: p, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
      typ: 'dpop+jwt', algorithms: ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'], maxTokenAge: '2 minutes',
    });
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const ath = createHash('sha256').update(token).digest('base64url');
    if (p.htm !== req.method) return refuse(res, 'invalid_dpop_proof', 'htm');
    if (p.htu !== `${url.origin}${url.pathname}`) return refuse(res, 'invalid_dpop_proof', 'htu');
    if (p.ath !== ath) return refuse(res, 'invalid_dpop_proof', 'ath');
    if (p.nonce !== nonce) return refuse(res, 'use_dpop_nonce', 'nonce');
    if (typeof p.jti !== 'string' || seen.has(p.jti)) return refuse(res, 'invalid_dpop_proof', 'jti');
    seen.add(p.jti);
    const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk);
    if (claims.cnf?.jkt !== jkt) return refuse(res, 'invalid_dpop_proof', 'not the key of the token');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ checked_by: 'jose', sub: claims.sub, jkt }));
  } catch (e) {
    refuse(res, 'invalid_token', String(e.code ?? e.name));
  }
});
server.listen(0, '127.0.0.1', () => {
  port = server.address().port;
  console.log(JSON.stringify({ port }));
});
