// Headless-Chromium checks of the ops dashboard against a running tally.
//   node tests/browser/dashboard.mjs BASE_URL ADMIN_TOKEN
// BASE_URL is a server started with ADMIN_TOKENS=ops:ADMIN_TOKEN (.ci/browser.sh
// starts one). Drives Debian's /usr/bin/chromium through playwright-core (no
// browser download). Prints one `ok - ...` / `not ok - ...` line per check,
// then `N passed, N failed`; exits 1 on any failure. Every wait has a timeout
// and a watchdog ends the whole run, so it never hangs.
// Screenshots go to target/dashboard-screenshots/ at the repository root. The metrics
// page's series chart has its checks in series.mjs beside this file.

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { seriesChart } from './series.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// From this machine's notes: the network is closed, so nothing may phone home.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WATCHDOG_MS = 150_000;
const HTTP_TIMEOUT_MS = 5_000;
const ACTION_TIMEOUT_MS = 5_000;
const NAVIGATION_TIMEOUT_MS = 10_000;
const LIVE_TIMEOUT_MS = 3_000; // the contract: live changes show within 3 s
const XSS = '<script>alert(1)</script>';
const PAGES = { overview: '/dashboard', breakers: '/dashboard/breakers', cache: '/dashboard/cache',
  limits: '/dashboard/limits', metrics: '/dashboard/metrics' };
const STATE_TEXT = { closed: 'CLOSED', open: 'OPEN', half_open: 'HALF OPEN',
  forced_open: 'FORCED OPEN', forced_closed: 'FORCED CLOSED' };

const [baseArg, token] = process.argv.slice(2);
if (!baseArg || !token) {
  console.error('usage: node tests/browser/dashboard.mjs BASE_URL ADMIN_TOKEN');
  process.exit(2);
}
const base = new URL(baseArg);
const origin = base.origin;
const at = (path) => new URL(path, base).href;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shotDir = join(repo, 'target', 'dashboard-screenshots');

const watchdog = setTimeout(() => {
  console.log(`not ok - the whole run finished within ${WATCHDOG_MS / 1000} s`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

// ---- reporting -------------------------------------------------------------

let passed = 0;
let failed = 0;
const firstLine = (e) => String(e?.message ?? e).split('\n')[0];
function report(ok, name, detail) {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${detail ? ` (${detail})` : ''}`);
  return ok;
}
class Failure extends Error {}
function expect(cond, detail) {
  if (!cond) throw new Failure(detail);
}
/** Runs one check: passes unless `fn` throws; a returned string is shown as detail. */
async function check(name, fn) {
  try {
    const detail = await fn();
    return report(true, name, typeof detail === 'string' ? detail : '');
  } catch (e) {
    return report(false, name, firstLine(e));
  }
}
const skip = (name, why) => report(false, name, `skipped: ${why}`);

// ---- HTTP from node ------------------------------------------------------------

async function http(method, path, { body, auth } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) headers.Authorization = `Bearer ${auth}`;
  const res = await fetch(at(path), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, text };
}
const brief = (text) => text.replace(/\s+/g, ' ').slice(0, 160);
const breakerAction = (action) =>
  http('POST', '/admin/breakers/upstream', { body: { action }, auth: token });

// ---- browser watchers ----------------------------------------------------------

const problems = { console: [], pageerror: [], dialog: [], offOrigin: [] };
/** Records what must never happen, on every page of a context. */
function watch(context, label) {
  context.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol !== 'data:' && u.origin !== origin) problems.offOrigin.push(`${label}: ${req.url()}`);
  });
  context.on('page', (page) => {
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const from = msg.location()?.url;
      problems.console.push(`${label} ${page.url()}: ${msg.text()}${from && from !== page.url() ? ` [${from}]` : ''}`);
    });
    page.on('pageerror', (err) => problems.pageerror.push(`${label} ${page.url()}: ${firstLine(err)}`));
    page.on('dialog', (dialog) => {
      problems.dialog.push(`${label} ${page.url()}: ${dialog.type()} ${JSON.stringify(dialog.message())}`);
      dialog.dismiss().catch(() => {});
    });
  });
}

async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(ACTION_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
  return page;
}

/** Opens a dashboard page; the check passes on a 200. Returns the response (or null). */
async function open(page, path) {
  let res = null;
  await check(`GET ${path} answers 200 in the browser`, async () => {
    res = await page.goto(at(path), { waitUntil: 'load' });
    expect(res?.status() === 200, `status ${res?.status()}`);
  });
  return res?.status() === 200 ? res : null;
}

const updates = (page) => page.evaluate(() => Number(document.body?.dataset.updates ?? 0));
const stateOf = (page, name) => page.evaluate((n) => {
  const el = document.querySelector(`[data-breaker="${n}"] [data-state]`);
  return el && { state: el.dataset.state, text: el.textContent.trim() };
}, name);
/** Waits until breaker `name` shows `text` (exactly, or containing it when `contains`). */
function waitForState(page, name, text, contains = false) {
  return page.waitForFunction(([n, t, c]) => {
    const el = document.querySelector(`[data-breaker="${n}"] [data-state]`);
    const shown = el?.textContent.trim() ?? '';
    return c ? shown.includes(t) : shown === t;
  }, [name, text, contains], { timeout: LIVE_TIMEOUT_MS });
}
/** Clicks a submit button and waits for the next document (the redirect's target). */
async function submitAndFollow(page, selector) {
  const loaded = page.waitForEvent('load', { timeout: NAVIGATION_TIMEOUT_MS });
  await page.locator(selector).click();
  await loaded;
}

// ---- a. seed ----------------------------------------------------------------

async function seed() {
  const now = () => new Date().toISOString();
  await check('seed: POST /api/metrics type=cpu x3 answers 201', async () => {
    const got = [];
    for (let i = 0; i < 3; i++) {
      const r = await http('POST', '/api/metrics', { body: { timestamp: now(), value: 1.5, type: 'cpu' } });
      got.push(r.status);
      expect(r.status === 201, `status ${r.status}: ${brief(r.text)}`);
    }
    return got.join(',');
  });
  // Type names are validated: hostile ones are refused and never stored, so the
  // escaping check below feeds the same string to the metrics page's own form.
  await check(`seed: POST /api/metrics type=${XSS} is refused with 422`, async () => {
    const r = await http('POST', '/api/metrics', { body: { timestamp: now(), value: 1.5, type: XSS } });
    expect(r.status === 422, `status ${r.status}: ${brief(r.text)}`);
  });
  await check('seed: GET /api/external x3 answers', async () => {
    const got = [];
    // Only traffic is wanted: the simulator fails some calls on purpose.
    for (let i = 0; i < 3; i++) got.push((await http('GET', '/api/external')).status);
    return `statuses ${got}`;
  });
  await check('seed: GET /api/metrics/summary?type=cpu x3 answers 200', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await http('GET', '/api/metrics/summary?type=cpu');
      expect(r.status === 200, `status ${r.status}: ${brief(r.text)}`);
    }
  });
}

// ---- b, c, d, g. the overview, live ---------------------------------------------

async function overview(browser) {
  const context = await browser.newContext();
  watch(context, 'overview');
  const page = await newPage(context);
  const res = await open(page, PAGES.overview);

  await check("the CSP of /dashboard has default-src 'none' and no unsafe-inline", async () => {
    expect(res, 'no response');
    const csp = (await res.allHeaders())['content-security-policy'];
    expect(csp, 'no content-security-policy header');
    expect(csp.includes("default-src 'none'"), `no default-src 'none' in: ${csp}`);
    expect(!csp.includes('unsafe-inline'), `unsafe-inline in: ${csp}`);
    return csp;
  });

  if (res) {
    await check('overview: body data-stream is /dashboard/stream?page=overview', async () => {
      const stream = await page.evaluate(() => document.body.dataset.stream);
      expect(stream === '/dashboard/stream?page=overview', `data-stream=${JSON.stringify(stream)}`);
    });
    await check('overview: has div#live', async () => {
      expect(await page.locator('div#live').count() === 1, 'no div#live');
    });
    await check('overview: live updates arrive (body data-updates increases within 3 s)', async () => {
      const before = await updates(page);
      await page.waitForFunction((n) => Number(document.body.dataset.updates ?? 0) > n, before,
        { timeout: LIVE_TIMEOUT_MS }).catch(() => { throw new Failure(`data-updates stayed at ${before}`); });
      return `${before} -> ${await updates(page)}`;
    });
    for (const name of ['upstream', 'redis']) {
      await check(`overview: breaker ${name} is a tr with a span.state whose text matches data-state`, async () => {
        const row = await page.evaluate((n) => {
          const tr = document.querySelector(`[data-breaker="${n}"]`);
          const span = tr?.querySelector('span.state[data-state]');
          return tr && { tag: tr.tagName, state: span?.dataset.state, text: span?.textContent.trim() };
        }, name);
        expect(row, `no [data-breaker="${name}"]`);
        expect(row.tag === 'TR', `[data-breaker] is a <${row.tag.toLowerCase()}>`);
        expect(row.state in STATE_TEXT, `data-state=${JSON.stringify(row.state)}`);
        expect(row.text === STATE_TEXT[row.state], `text ${JSON.stringify(row.text)} for ${row.state}`);
        return row.text;
      });
    }
  } else {
    skip('overview: live markup and updates', '/dashboard did not load');
  }

  // Forced through the API from node; the open page must follow without a reload.
  if (res) await page.evaluate(() => { window.__noReload = true; });
  const forced = await check('admin API: force_open upstream answers 200', async () => {
    const r = await breakerAction('force_open');
    expect(r.status === 200, `status ${r.status}: ${brief(r.text)}`);
  });
  try {
    if (res && forced) {
      await check('overview: upstream shows OPEN within 3 s, without a reload', async () => {
        await waitForState(page, 'upstream', 'OPEN', true)
          .catch(async () => { throw new Failure(`shows ${JSON.stringify(await stateOf(page, 'upstream'))}`); });
        expect(await page.evaluate(() => window.__noReload === true), 'the page was reloaded');
        const s = await stateOf(page, 'upstream');
        expect(s.state === 'forced_open' && s.text === 'FORCED OPEN', `shows ${JSON.stringify(s)}`);
        return s.text;
      });
    } else {
      skip('overview: upstream shows OPEN within 3 s, without a reload', res ? 'force_open failed' : 'no page');
    }
  } finally {
    const reset = await check('admin API: reset upstream answers 200', async () => {
      const r = await breakerAction('reset');
      expect(r.status === 200, `status ${r.status}: ${brief(r.text)}`);
    });
    if (res && reset) {
      await check('overview: upstream shows CLOSED again within 3 s', async () => {
        await waitForState(page, 'upstream', 'CLOSED')
          .catch(async () => { throw new Failure(`shows ${JSON.stringify(await stateOf(page, 'upstream'))}`); });
      });
    }
  }
  await context.close();
}

// ---- e. operator controls ---------------------------------------------------------

async function operator(browser) {
  const context = await browser.newContext();
  watch(context, 'operator');
  const page = await newPage(context);

  let loggedIn = false;
  if (await open(page, '/dashboard/login')) {
    loggedIn = await check('login: form#login with the token redirects to /dashboard', async () => {
      await page.locator('form#login input[name=token]').fill(token);
      const landed = page.waitForURL((u) => u.pathname === '/dashboard', { timeout: NAVIGATION_TIMEOUT_MS });
      await page.locator('form#login [type=submit]').click();
      await landed.catch(() => { throw new Failure(`landed on ${page.url()}`); });
    });
  }
  const force = 'form[data-breaker-action="force_open"][data-breaker-name="upstream"] [type=submit]';
  const reset = 'form[data-breaker-action="reset"][data-breaker-name="upstream"] [type=submit]';
  if (loggedIn && await open(page, PAGES.breakers)) {
    const clicked = await check('breakers: force_open button leads to FORCED OPEN', async () => {
      await submitAndFollow(page, force);
      await waitForState(page, 'upstream', 'FORCED OPEN')
        .catch(async () => { throw new Failure(`shows ${JSON.stringify(await stateOf(page, 'upstream'))} at ${page.url()}`); });
      return `at ${new URL(page.url()).pathname}`;
    });
    await check('breakers: reset button leads to CLOSED', async () => {
      await submitAndFollow(page, reset);
      await waitForState(page, 'upstream', 'CLOSED')
        .catch(async () => { throw new Failure(`shows ${JSON.stringify(await stateOf(page, 'upstream'))} at ${page.url()}`); });
    });
    if (!clicked) await breakerAction('reset').catch(() => {});
    await check('breakers: #audit names the operator "ops"', async () => {
      await page.waitForFunction(() => document.querySelector('#audit')?.innerText.includes('ops'), null,
        { timeout: LIVE_TIMEOUT_MS })
        .catch(async () => {
          const audit = await page.evaluate(() => document.querySelector('#audit')?.innerText ?? null);
          throw new Failure(audit === null ? 'no #audit' : `#audit: ${brief(audit)}`);
        });
    });
  } else {
    skip('breakers: operator controls (force_open, reset, audit)', loggedIn ? 'no page' : 'not logged in');
  }

  // Screenshots while logged in: the breakers page then shows its controls too.
  mkdirSync(shotDir, { recursive: true });
  for (const [name, path] of Object.entries(PAGES)) {
    const loaded = await open(page, path);
    if (loaded) {
      await check(`${name}: body data-stream is /dashboard/stream?page=${name}`, async () => {
        const stream = await page.evaluate(() => document.body.dataset.stream);
        expect(stream === `/dashboard/stream?page=${name}`, `data-stream=${JSON.stringify(stream)}`);
      });
      await check(`${name}: a live update arrives within 3 s`, async () => {
        await page.waitForFunction(() => Number(document.body.dataset.updates ?? 0) >= 1, null,
          { timeout: LIVE_TIMEOUT_MS }).catch(() => { throw new Failure('data-updates stayed at 0'); });
      });
    }
    if (name === 'metrics') await xss(page, loaded);
    await check(`screenshot ${name}`, async () => {
      const file = join(shotDir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      expect(statSync(file).size > 0, `${file} is empty`);
      return relative(repo, file);
    });
  }
  await context.close();
}

// ---- f. escaping ---------------------------------------------------------------

async function xss(page, loaded) {
  if (!loaded) return skip(`metrics: shows ${XSS} as text`, 'no page');
  // The summary form echoes the requested type back (with why it is refused).
  loaded = await open(page, `/dashboard/metrics?type=${encodeURIComponent(XSS)}`);
  if (!loaded) return skip(`metrics: shows ${XSS} as text`, 'no page');
  await check(`metrics: shows ${XSS} as text`, async () => {
    await page.waitForFunction((s) => document.body.innerText.includes(s), XSS, { timeout: LIVE_TIMEOUT_MS })
      .catch(() => { throw new Failure('not in the page text'); });
  });
  await check('metrics: no dialog and no injected <script>', async () => {
    await page.waitForTimeout(300);
    const injected = await page.evaluate(() => [...document.scripts].some((s) => s.text.includes('alert(1)')));
    expect(!injected, 'a <script> element holds alert(1)');
    expect(problems.dialog.length === 0, problems.dialog.join('; '));
  });
}

// ---- e. no controls without a login ------------------------------------------------

async function anonymous(browser) {
  const context = await browser.newContext();
  watch(context, 'anonymous');
  const page = await newPage(context);
  if (await open(page, PAGES.breakers)) {
    await check('breakers without login: rows shown, no form[data-breaker-action]', async () => {
      expect(await page.locator('[data-breaker="upstream"]').count() > 0, 'no upstream row');
      const forms = await page.locator('form[data-breaker-action]').count();
      expect(forms === 0, `${forms} forms`);
    });
  } else {
    skip('breakers without login: no form[data-breaker-action]', 'no page');
  }
  await context.close();
}

// ---- main --------------------------------------------------------------------

async function main() {
  await seed();
  if (!existsSync(CHROMIUM)) {
    report(false, `chromium at ${CHROMIUM}`, 'missing: apt-get install -y chromium');
    return;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: NAVIGATION_TIMEOUT_MS,
  });
  try {
    await overview(browser);
    await operator(browser);
    await anonymous(browser);
    await seriesChart(browser, {
      at, brief, check, expect, http, newPage, open, repo, shotDir, watch, Failure, XSS,
    });
  } finally {
    await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5_000))]);
  }
  const list = (xs) => xs.slice(0, 5).join('; ') + (xs.length > 5 ? `; ... ${xs.length} in all` : '');
  report(problems.console.length === 0, 'no console errors', list(problems.console));
  report(problems.pageerror.length === 0, 'no page errors', list(problems.pageerror));
  report(problems.dialog.length === 0, 'no dialogs', list(problems.dialog));
  report(problems.offOrigin.length === 0, `no requests outside ${origin}`, list(problems.offOrigin));
}

try {
  await main();
} catch (e) {
  report(false, 'the run finished without an exception', firstLine(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
