// A real browser (Debian's Chromium, driven by playwright-core) walks Tessera's sign-in pages as
// a person would: it opens AUTHORIZE_URL, fills in email and password on the login page, submits,
// clicks Allow when a consent page follows, and ends at the client's redirect URI. It proves the
// pages work in a browser: the forms submit, the cookies the server sets are sent back (with the
// browser's own SameSite and Secure rules), no Content-Security-Policy blocks the form posts or
// the final redirect to the client, and the redirect carries the authorization code.
// Nothing listens at REDIRECT_URI: the browser's request to it is caught, never answered.
//
// Env: AUTHORIZE_URL REDIRECT_URI EMAIL PASSWORD [SCREENSHOT_DIR] [CHROMIUM]
// Output: one JSON line {"callback": "<full callback url>", "consent_shown": bool}; on failure
// {"error": ...}, the reason on stderr, and exit status 1.
import { runScript, signIn } from './browser.mjs';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

async function main() {
  const { callback, consent_shown } = await signIn({
    authorizeUrl: env('AUTHORIZE_URL'),
    redirectUri: env('REDIRECT_URI'),
    email: env('EMAIL'),
    password: env('PASSWORD'),
    shots: process.env.SCREENSHOT_DIR,
  });
  return { callback, consent_shown };
}

await runScript(main, 90_000);
