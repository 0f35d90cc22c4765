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
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT_MS = 20_000;

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

function within(promise, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

let browser;

async function main() {
  const authorizeUrl = env('AUTHORIZE_URL');
  const redirect = new URL(env('REDIRECT_URI'));
  const email = env('EMAIL');
  const password = env('PASSWORD');
  const shots = process.env.SCREENSHOT_DIR;
  if (shots) mkdirSync(shots, { recursive: true });
  const screenshot = async (page, name) => {
    if (shots) await page.screenshot({ path: join(shots, name), fullPage: true });
  };

  const port = redirect.port || (redirect.protocol === 'https:' ? '443' : '80');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: TIMEOUT_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Chromium refuses some ports (9, the discard port, among them) with ERR_UNSAFE_PORT. The
      // request is seen either way; this only makes the failed connection an ordinary one.
      `--explicitly-allowed-ports=${port}`,
    ],
  });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.setDefaultNavigationTimeout(TIMEOUT_MS);
  // What the browser complains about (a Content-Security-Policy blocking the form post or the
  // redirect to the client shows up here), for the error message.
  const complaints = [];
  page.on('console', (m) => m.type() === 'error' && complaints.push(m.text()));
  const explain = async (e) => {
    const text = await page.locator('body').innerText().catch(() => '');
    const seen = complaints.length ? `; browser console: ${complaints.slice(-3).join(' | ')}` : '';
    return new Error(`${e.message}; the page at ${page.url()} says: ${text.slice(0, 300)}${seen}`);
  };

  // The server answers a form post with a 303 to the redirect URI: page.route does not see
  // redirect targets, but the 'request' event does. The connection then fails, which is fine.
  const isCallback = (url) => {
    const u = new URL(url);
    return u.origin === redirect.origin && u.pathname === redirect.pathname;
  };
  const callback = new Promise((resolve) => {
    page.on('request', (request) => {
      if (isCallback(request.url())) resolve(request.url());
    });
  });

  await page.goto(authorizeUrl, { waitUntil: 'domcontentloaded' });
  await page.locator('input[name="email"]').waitFor();
  await screenshot(page, 'login.png');
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(password);
  const submit = ':is(button:not([type]), button[type="submit"], input[type="submit"])';
  await page.locator(`form:has(input[name="password"]) ${submit}`).first().click();

  const allow = page.locator('[name="decision"][value="allow"]');
  const next = await within(
    Promise.race([callback.then(() => 'callback'), allow.waitFor().then(() => 'consent')]),
    'after the login form was posted, neither the consent page nor the redirect to the client came',
  ).catch(async (e) => {
    throw await explain(e);
  });

  let consentShown = false;
  if (next === 'consent') {
    consentShown = true;
    await screenshot(page, 'consent.png');
    await allow.click();
  }
  const url = await within(callback, 'no redirect to the client after the consent page').catch(async (e) => {
    throw await explain(e);
  });
  return { callback: url, consent_shown: consentShown };
}

function fail(e) {
  console.error(e?.stack ?? String(e));
  console.log(JSON.stringify({ error: String(e?.message ?? e) }));
  process.exit(1);
}

setTimeout(() => fail(new Error('the whole flow took longer than 90 s')), 90_000).unref();
try {
  const result = await main();
  await within(browser.close(), 'closing the browser').catch(() => {});
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (e) {
  await within(browser?.close() ?? Promise.resolve(), 'closing the browser').catch(() => {});
  fail(e);
}
