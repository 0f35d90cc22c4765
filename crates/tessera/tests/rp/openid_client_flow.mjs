// A PUBLIC client (single-page or native app: no secret, PKCE S256) built on openid-client v6 runs
// the OpenID Connect authorization-code flow against Tessera. It proves that an independent,
// strict relying-party library accepts everything the server says:
//   - discovery (the issuer in the document matches ISSUER);
//   - the authorization response: state, and `iss` (RFC 9207, checked because discovery
//     advertises authorization_response_iss_parameter_supported);
//   - the code exchange with the PKCE verifier and no client secret, and the ID token: iss, aud,
//     exp, iat, nonce, and its RS256 signature against jwks_uri (non-repudiation checks on);
//   - userinfo for the same subject;
//   - refresh-token rotation, and reuse detection: the old refresh token is refused, after which
//     the new one is refused too (the whole family was revoked).
// The login and consent pages are driven with plain fetch and a small cookie jar, as a browser
// would post them (redirects are never followed to REDIRECT_URI: nothing listens there).
//
// Env: ISSUER CLIENT_ID REDIRECT_URI EMAIL PASSWORD [SCOPE]
// Output: one JSON object on the last stdout line; on failure {"error": ...}, the reason on
// stderr, and exit status 1.
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';

const TIMEOUT_S = 20;

function env(name, fallback) {
  const value = process.env[name] || fallback;
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

// ---- a tiny browser: cookie jar, manual redirects, HTML forms ------------------------------

const jar = new Map();

async function http(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
  const res = await fetch(url, {
    ...init,
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(TIMEOUT_S * 1000),
  });
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
    if (expired || value === '') jar.delete(name);
    else jar.set(name, value);
  }
  return res;
}

const ENTITIES = { amp: '&', quot: '"', '#39': "'", '#x27': "'", lt: '<', gt: '>' };
const unescapeHtml = (s) => s.replace(/&(amp|quot|#39|#x27|lt|gt);/g, (_, e) => ENTITIES[e]);

// name=value pairs of one tag, attributes in any order, quoted either way or not at all.
function attributesOf(tag) {
  const out = {};
  const re = /([^\s=<>\/"']+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/g;
  for (const m of tag.matchAll(re)) out[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4]);
  return out;
}

// Tags whose quoted attribute values may contain '>'.
const TAG = (name) => new RegExp(`<${name}\\b(?:"[^"]*"|'[^']*'|[^'">])*>`, 'gi');

function formsOf(html) {
  return [...html.matchAll(/<form\b((?:"[^"]*"|'[^']*'|[^'">])*)>([\s\S]*?)<\/form>/gi)].map(
    ([, open, body]) => {
      const fields = {};
      const buttons = [...body.matchAll(TAG('button'))].map(([t]) => attributesOf(t));
      for (const [tag] of body.matchAll(TAG('input'))) {
        const a = attributesOf(tag);
        const type = (a.type || 'text').toLowerCase();
        if (['submit', 'button', 'image', 'reset'].includes(type)) buttons.push(a);
        else if (['checkbox', 'radio'].includes(type) && !/\schecked\b/i.test(tag)) continue;
        else if (a.name) fields[a.name] = a.value ?? '';
      }
      return { action: attributesOf(open).action, fields, buttons };
    },
  );
}

// Walks login (and consent, when shown) until the server redirects to REDIRECT_URI.
async function signIn(authorizeUrl, redirectUri, email, password) {
  const target = new URL(redirectUri);
  const isCallback = (u) => u.origin === target.origin && u.pathname === target.pathname;
  let url = authorizeUrl.href;
  let res = await http(url);
  let consentShown = false;
  let logins = 0;
  for (let step = 0; step < 8; step++) {
    if (res.status >= 300 && res.status < 400) {
      const location = new URL(res.headers.get('location'), url);
      if (isCallback(location)) return { callback: location, consentShown };
      res = await http((url = location.href));
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${html.slice(0, 500)}`);
    const forms = formsOf(html);
    const login = forms.find((f) => 'password' in f.fields);
    const consent = forms.find((f) => f.buttons.some((b) => b.name === 'decision' && b.value === 'allow'));
    let form, extra;
    if (login) {
      if (++logins > 1) throw new Error(`login page shown again after posting the credentials: ${html.slice(0, 500)}`);
      [form, extra] = [login, { email, password }];
    } else if (consent) {
      [form, extra] = [consent, { decision: 'allow' }];
      consentShown = true;
    } else {
      throw new Error(`no login or consent form at ${url}: ${html.slice(0, 500)}`);
    }
    url = new URL(form.action || url, url).href;
    res = await http(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.fields, ...extra }),
    });
  }
  throw new Error('too many steps between the authorization request and the callback');
}

// The error code of a refresh the server should refuse; null when it was accepted.
async function refusal(config, refreshToken) {
  try {
    await client.refreshTokenGrant(config, refreshToken);
    return null;
  } catch (e) {
    if (e instanceof client.ResponseBodyError) return e.error;
    throw e;
  }
}

async function main() {
  const issuer = env('ISSUER');
  const redirectUri = env('REDIRECT_URI');
  const scope = env('SCOPE', 'openid profile email offline_access');
  const config = await client.discovery(new URL(issuer), env('CLIENT_ID'), undefined, client.None(), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: TIMEOUT_S,
  });

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authorizeUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  });

  const { callback, consentShown } = await signIn(authorizeUrl, redirectUri, env('EMAIL'), env('PASSWORD'));

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);

  const oldRefresh = tokens.refresh_token;
  if (!oldRefresh) throw new Error(`no refresh_token in the token response (scope: ${tokens.scope})`);
  const refreshed = await client.refreshTokenGrant(config, oldRefresh);
  const newRefresh = refreshed.refresh_token;
  const oldRefreshError = await refusal(config, oldRefresh);
  const familyRevokedError = newRefresh ? await refusal(config, newRefresh) : null;

  const pkg = JSON.parse(readFileSync(new URL('./node_modules/openid-client/package.json', import.meta.url)));
  return {
    library: 'openid-client',
    version: pkg.version,
    sub: claims.sub,
    id_token_claims: claims,
    userinfo,
    scope: tokens.scope ?? null,
    refresh_rotated: Boolean(newRefresh) && newRefresh !== oldRefresh,
    old_refresh_error: oldRefreshError,
    family_revoked_error: familyRevokedError,
    consent_shown: consentShown,
  };
}

// openid-client wraps the precise reason ("unexpected iss", a bad signature...) in causes.
function describe(e) {
  const parts = [];
  for (let c = e, depth = 0; c !== undefined && depth < 5; c = c.cause, depth++) {
    if (!(c instanceof Error)) {
      const bytes = (_, v) => (ArrayBuffer.isView(v) ? `<${v.byteLength} bytes>` : v);
      parts.push(String(JSON.stringify(c, bytes)).slice(0, 500));
      break;
    }
    parts.push(c.code ? `${c.message} [${c.code}]` : c.message);
  }
  return parts.join(' <- ');
}

function fail(e) {
  console.error(e?.stack ?? String(e));
  console.log(JSON.stringify({ error: describe(e) }));
  process.exit(1);
}

setTimeout(() => fail(new Error('the whole flow took longer than 90 s')), 90_000).unref();
try {
  console.log(JSON.stringify(await main()));
  process.exit(0);
} catch (e) {
  fail(e);
}
