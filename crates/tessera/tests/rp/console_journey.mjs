// The admin console in a real browser (Debian's Chromium, driven by playwright-core), as
// operators use it: an admin signs in through Tessera's own sign-in page, creates a service
// client and copies its secret (a token is fetched with it from the token endpoint, outside the
// browser), rotates the secret (the old one is then refused), disables the client (its token is
// then inactive at introspection), creates a user, finds both in the audit trail, and signs out.
// A person without a console role is refused; an auditor sees the pages and no form that
// changes anything. Every page is checked with axe-core (WCAG 2.1 A and AA rules) under the
// console's own Content-Security-Policy; serious and critical violations are reported.
//
// Env: BASE ADMIN_EMAIL AUDITOR_EMAIL NOBODY_EMAIL PASSWORD INTROSPECT_ID INTROSPECT_SECRET
//      [SCREENSHOT_DIR] [CHROMIUM]
// Output: one JSON line with what happened (see the end of main); on failure {"error": ...}.
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { logIn, newPage, runScript } from './browser.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

const BASE = () => env('BASE');
const shots = process.env.SCREENSHOT_DIR;
if (shots) mkdirSync(shots, { recursive: true });

const violations = [];
const checked = [];

// axe-core, run in the page (through the DevTools protocol, so the page's CSP stays in force).
async function audit(page, name) {
  await page.evaluate(`${AXE}\n;0`);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      violations.push({ page: name, id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) });
    }
  }
  checked.push(name);
}

// A screenshot at desktop and at phone width.
async function shoot(page, name) {
  if (!shots) return;
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(shots, `console-${name}.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, `console-${name}-phone.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function look(page, name) {
  await audit(page, name);
  await shoot(page, name);
}

async function signInTo(page, email) {
  await page.goto(`${BASE()}/console`, { waitUntil: 'domcontentloaded' });
  await logIn(page, email, env('PASSWORD'));
  await page.waitForLoadState('domcontentloaded');
}

async function token(id, secret) {
  const r = await fetch(`${BASE()}/oauth2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  const body = await r.json().catch(() => ({}));
  return { status: r.status, token: body.access_token };
}

async function introspect(t) {
  const auth = Buffer.from(`${env('INTROSPECT_ID')}:${env('INTROSPECT_SECRET')}`).toString('base64');
  const r = await fetch(`${BASE()}/oauth2/introspect`, {
    method: 'POST',
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${encodeURIComponent(t)}`,
  });
  return (await r.json()).active;
}

async function main() {
  const page = await newPage();
  const browser = page.context().browser();
  const out = {};

  // The admin.
  await signInTo(page, env('ADMIN_EMAIL'));
  out.overview_heading = await page.locator('h1').innerText();
  await look(page, 'overview');
  await page.getByRole('link', { name: 'Clients' }).click();
  await look(page, 'clients');
  await page.getByRole('link', { name: 'New client' }).click();
  await look(page, 'client-new');
  await page.getByLabel('Name', { exact: true }).fill('Billing');
  await page.getByLabel(/^Scopes/).fill('invoices:read');
  await page.getByRole('button', { name: 'Create client' }).click();
  const secret = (await page.locator('#secret').innerText()).trim();
  const id = (await page.locator('dd code').first().innerText()).trim();
  out.client_id = id;
  await look(page, 'secret');
  const first = await token(id, secret);
  out.token_status = first.status;
  await page.getByRole('link', { name: 'I have copied it' }).click();
  await look(page, 'client');

  await page.getByLabel(/Rotate the secret/).selectOption('0');
  await page.getByRole('button', { name: 'Rotate secret…' }).click();
  await look(page, 'confirm');
  await page.getByRole('button', { name: 'Rotate', exact: true }).click();
  const rotated = (await page.locator('#secret').innerText()).trim();
  out.rotated = rotated !== secret;
  out.old_secret_status = (await token(id, secret)).status;
  const second = await token(id, rotated);
  out.new_secret_status = second.status;
  out.active_before_disable = await introspect(second.token);

  await page.getByRole('link', { name: 'I have copied it' }).click();
  await page.getByRole('button', { name: 'Disable…' }).click();
  await page.getByRole('button', { name: 'Disable', exact: true }).click();
  out.disabled_notice = await page.locator('[role=status]').innerText();
  out.active_after_disable = await introspect(second.token);

  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('link', { name: 'New user' }).click();
  await look(page, 'user-new');
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByLabel(/^Password/).fill('a long enough password');
  await page.getByRole('button', { name: 'Create user' }).click();
  out.user_heading = await page.locator('h1').innerText();
  await look(page, 'user');
  await page.getByRole('link', { name: 'Users' }).click();
  await look(page, 'users');

  await page.getByRole('link', { name: 'Audit trail' }).click();
  await page.getByLabel(/^Client, user or key id/).fill(id);
  await page.getByRole('button', { name: 'Filter' }).click();
  out.audit_for_client = await page.locator('tbody').innerText();
  await page.getByLabel(/^Client, user or key id/).fill('');
  await page.getByLabel(/^Event/).fill('user.create');
  await page.getByRole('button', { name: 'Filter' }).click();
  out.audit_for_user = await page.locator('tbody').innerText();
  await look(page, 'audit');
  await page.getByRole('link', { name: 'Keys' }).click();
  await look(page, 'keys');
  await page.getByRole('link', { name: 'Trust' }).click();
  await look(page, 'trust');
  await page.getByRole('link', { name: 'Registration' }).click();
  await look(page, 'registration');

  // Keyboard: the first Tab reaches a link of the navigation, and it shows where focus is.
  await page.keyboard.press('Tab');
  out.focus_outline = await page.evaluate(() => {
    const el = document.activeElement;
    return el ? getComputedStyle(el).outlineStyle : 'none';
  });

  await page.getByRole('button', { name: 'Sign out' }).click();
  out.signed_out = await page.locator('h1').innerText();

  // Someone without a role.
  const nobody = await (await browser.newContext()).newPage();
  await signInTo(nobody, env('NOBODY_EMAIL'));
  out.nobody = await nobody.locator('main').innerText();

  // An auditor.
  const auditor = await (await browser.newContext()).newPage();
  await signInTo(auditor, env('AUDITOR_EMAIL'));
  out.auditor_heading = await auditor.locator('h1').innerText();
  await auditor.getByRole('link', { name: 'Clients' }).click();
  out.auditor_new_client_links = await auditor.getByRole('link', { name: 'New client' }).count();
  await auditor.locator('tbody a').first().click();
  out.auditor_forms = await auditor.locator('main form').count();
  await auditor.goto(`${BASE()}/console/clients/new`);
  out.auditor_new_form = await auditor.locator('h1').innerText();

  out.violations = violations;
  out.pages_checked = checked;
  return out;
}

await runScript(main, 120_000);
