// Device authorization (RFC 8628) with two independent parties, as it happens for real: a
// device (openid-client v6's initiateDeviceAuthorization and pollDeviceAuthorizationGrant, a
// public client) asks for codes and polls the token endpoint, while a person in a real browser
// (Debian's Chromium, driven by playwright-core) opens the verification_uri_complete the device
// shows, confirms the code, signs in and allows on the consent page (which shows the code).
//
// Env: ISSUER CLIENT_ID SCOPE EMAIL PASSWORD [SCREENSHOT_DIR] [CHROMIUM]
// Output: one JSON line {user_code, verification_uri, consent_text, result_title, tokens:
// {access_token claims, id_token claims, refresh_token: bool, scope, token_type}}; on failure
// {"error": ...}, the reason on stderr, and exit status 1.
import * as client from 'openid-client';
import { approveDevice, runScript, within } from './browser.mjs';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

async function main() {
  const config = await client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
  const started = await client.initiateDeviceAuthorization(config, { scope: env('SCOPE') });
  // The device polls on its own while the person acts; neither waits for the other.
  const polled = client.pollDeviceAuthorizationGrant(config, started);
  const person = approveDevice({
    url: started.verification_uri_complete,
    email: env('EMAIL'),
    password: env('PASSWORD'),
    shots: process.env.SCREENSHOT_DIR,
  });
  const [tokens, seen] = await Promise.all([within(polled, 'the device polling for its tokens'), person]);
  return {
    user_code: started.user_code,
    verification_uri: started.verification_uri,
    verification_uri_complete: started.verification_uri_complete,
    expires_in: started.expires_in,
    interval: started.interval,
    consent_text: seen.consent_text,
    result_title: seen.result_title,
    tokens: {
      token_type: tokens.token_type,
      scope: tokens.scope,
      access_token: claims(tokens.access_token),
      id_token: tokens.id_token ? tokens.claims() : null,
      refresh_token: typeof tokens.refresh_token === 'string',
    },
  };
}

await runScript(main, 90_000);
