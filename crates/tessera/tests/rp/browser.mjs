// A real browser (Debian's Chromium, driven by playwright-core) that signs a person in through
// Tessera's pages as a person would: it opens an authorization URL, fills in email and password
// on the login page, submits, clicks Allow when a consent page follows, and ends at the
// client's redirect URI, whose request is caught (nothing need listen there). Shared by the
// scripts that need a person in the loop (chromium_flow.mjs, mcp_client.mjs).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const TIMEOUT_MS = 20_000;

export function within(promise, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

let browser;

// Closes the browser, if one was started.
export async function closeBrowser() {
  await within(browser?.close() ?? Promise.resolve(), 'closing the browser').catch(() => {});
}

// A page of a new headless Chromium; `allowPort`, when given, is a port Chromium would
// otherwise refuse.
export async function newPage(allowPort) {
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
      ...(allowPort ? [`--explicitly-allowed-ports=${allowPort}`] : []),
    ],
  });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.setDefaultNavigationTimeout(TIMEOUT_MS);
  return page;
}

// Fills in and posts the login form the page shows.
export async function logIn(page, email, password) {
  await page.locator('input[name="email"]').waitFor();
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(password);
  const submit = ':is(button:not([type]), button[type="submit"], input[type="submit"])';
  await page.locator(`form:has(input[name="password"]) ${submit}`).first().click();
}

// Connects a device as a person would: opens `url` (the verification_uri_complete a device
// shows, the code filled in), confirms the code, signs `email` in, reads the consent page
// (which must show the code) and allows (or, with `deny`, denies). Returns {consent_text,
// result_title}.
export async function approveDevice({ url, email, password, deny, shots }) {
  if (shots) mkdirSync(shots, { recursive: true });
  const page = await newPage();
  const complaints = [];
  page.on('console', (m) => m.type() === 'error' && complaints.push(m.text()));
  try {
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.locator('input[name="user_code"]').waitFor();
    if (shots) await page.screenshot({ path: join(shots, 'device.png'), fullPage: true });
    await page.locator('form:has(input[name="user_code"]) button[type="submit"]').click();
    await logIn(page, email, password);
    const decision = page.locator(`[name="decision"][value="${deny ? 'deny' : 'allow'}"]`);
    await decision.waitFor();
    if (shots) await page.screenshot({ path: join(shots, 'device-consent.png'), fullPage: true });
    const consentText = await page.locator('main').innerText();
    await decision.click();
    await page.locator('h1').filter({ hasText: /Device connected|Request denied/ }).waitFor();
    return { consent_text: consentText, result_title: await page.locator('h1').innerText() };
  } catch (e) {
    const text = await page.locator('body').innerText().catch(() => '');
    const seen = complaints.length ? `; browser console: ${complaints.slice(-3).join(' | ')}` : '';
    throw new Error(`${e.message}; the page at ${page.url()} says: ${text.slice(0, 300)}${seen}`);
  }
}

// Signs `email` in at `authorizeUrl` and returns {callback, consent_shown, consent_text}.
export async function signIn({ authorizeUrl, redirectUri, email, password, shots }) {
  const redirect = new URL(redirectUri);
  if (shots) mkdirSync(shots, { recursive: true });
  const screenshot = async (page, name) => {
    if (shots) await page.screenshot({ path: join(shots, name), fullPage: true });
  };
  const port = redirect.port || (redirect.protocol === 'https:' ? '443' : '80');
  const page = await newPage(port);
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
  await logIn(page, email, password);

  const allow = page.locator('[name="decision"][value="allow"]');
  const next = await within(
    Promise.race([callback.then(() => 'callback'), allow.waitFor().then(() => 'consent')]),
    'after the login form was posted, neither the consent page nor the redirect to the client came',
  ).catch(async (e) => {
    throw await explain(e);
  });

  let consentShown = false;
  let consentText = '';
  if (next === 'consent') {
    consentShown = true;
    await screenshot(page, 'consent.png');
    consentText = await page.locator('main').innerText();
    await allow.click();
  }
  const url = await within(callback, 'no redirect to the client after the consent page').catch(async (e) => {
    throw await explain(e);
  });
  return { callback: url, consent_shown: consentShown, consent_text: consentText };
}

// Runs `main` as a script: its result as one JSON line on stdout and exit 0, or the error on
// stderr, {"error": …} on stdout and exit 1; the browser closed either way; `limitMs` for all.
export async function runScript(main, limitMs) {
  const fail = (e) => {
    console.error(e?.stack ?? String(e));
    console.log(JSON.stringify({ error: String(e?.message ?? e) }));
    process.exit(1);
  };
  setTimeout(() => fail(new Error(`the whole flow took longer than ${limitMs / 1000} s`)), limitMs).unref();
  try {
    const result = await main();
    await closeBrowser();
    console.log(JSON.stringify(result));
    process.exit(0);
  } catch (e) {
    await closeBrowser();
    fail(e);
  }
}
