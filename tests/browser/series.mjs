// The metrics page's series chart in headless Chromium (called by dashboard.mjs, whose
// helpers it gets as `h`): an inline SVG with the average, the min–max band and the p95,
// readable axes, a caption, refreshed live by `chart` events, there without JavaScript
// too; refusals in the API's words; what was typed shown as text.

import { statSync } from 'node:fs';
import { join, relative } from 'node:path';

const TYPE = 'chart.demo';
const CHART = `/dashboard/metrics?type=${TYPE}&period=hourly&step=1m`;
// METRICS_REFRESH (5 s) plus the live contract's 3 s.
const CHART_REFRESH_MS = 8_000;

/** One hour of points, two a minute, with ten empty minutes (a gap) in the middle. */
async function seed(h) {
  await h.check(`seed: POST /api/metrics/batch type=${TYPE} (an hour, with a gap) answers 201`, async () => {
    const now = Date.now();
    const items = [];
    for (let m = 0; m < 58; m++) {
      if (m >= 25 && m < 35) continue;
      for (const s of [10, 40]) {
        const at = new Date(now - m * 60_000 - s * 1000);
        items.push({ timestamp: at.toISOString(), value: 50 + 20 * Math.sin(m / 9) + (s % 20), type: TYPE });
      }
    }
    const r = await h.http('POST', '/api/metrics/batch', { body: items });
    h.expect(r.status === 201, `status ${r.status}: ${h.brief(r.text)}`);
    return `${items.length} points`;
  });
}

/** What the chart shows: its paths' data, labels, caption, accessible name. */
const readChart = (page) => page.evaluate(() => {
  const box = document.querySelector('#series-chart');
  const svg = box?.querySelector('svg[role="img"]');
  if (!svg) return null;
  const d = (cls) => svg.querySelector(`path.${cls}`)?.getAttribute('d') ?? '';
  const texts = (cls) => [...svg.querySelectorAll(`text.${cls}`)];
  const xs = texts('x-tick').map((t) => t.getBoundingClientRect());
  return {
    avg: d('avg'), band: d('band'), p95: d('p95'),
    x: texts('x-tick').map((t) => t.textContent), y: texts('y-tick').map((t) => t.textContent),
    overlaps: xs.slice(1).filter((r, i) => r.left < xs[i].right).length,
    label: svg.getAttribute('aria-label') ?? '', title: svg.querySelector('title')?.textContent ?? '',
    caption: box.querySelector('[data-series-caption]')?.textContent.replace(/\s+/g, ' ') ?? '',
    factsAfter: !!document.querySelector('#series-chart ~ dl.facts'),
  };
});

export async function seriesChart(browser, h) {
  await seed(h);
  const context = await browser.newContext();
  h.watch(context, 'series');
  const page = await h.newPage(context);
  if (await h.open(page, CHART)) {
    await h.check('metrics chart: an svg with paths for the average, the min–max band and the p95', async () => {
      const c = await readChart(page);
      h.expect(c, 'no #series-chart svg[role=img]');
      for (const k of ['avg', 'band', 'p95']) h.expect(c[k].startsWith('M'), `path.${k} d=${JSON.stringify(c[k].slice(0, 40))}`);
      // The ten empty minutes are a gap: each line is drawn in (at least) two pieces.
      h.expect((c.avg.match(/M/g) ?? []).length >= 2, `avg has no gap: ${c.avg.slice(0, 80)}`);
      h.expect(c.label.includes(TYPE) && c.title === c.label, `aria-label ${JSON.stringify(c.label)}`);
      return c.label;
    });
    await check2(h, page);
    await h.check('metrics chart: the stream URL carries the chart query', async () => {
      const stream = await page.evaluate(() => document.body.dataset.stream);
      const want = `/dashboard/stream?page=metrics&type=${TYPE}&period=hourly&step=1m`;
      h.expect(stream === want, `data-stream=${JSON.stringify(stream)}`);
    });
    await h.check(`metrics chart: re-rendered live (a chart event within ${CHART_REFRESH_MS / 1000} s)`, async () => {
      await page.waitForFunction(() => Number(document.querySelector('#series-chart')?.dataset.updates ?? 0) >= 1,
        null, { timeout: CHART_REFRESH_MS }).catch(() => { throw new h.Failure('#series-chart data-updates stayed at 0'); });
      const c = await readChart(page);
      h.expect(c && c.avg.startsWith('M') && c.x.length >= 2, 'the new chart has no average or no axis');
    });
    await h.check('screenshot metrics-chart', async () => {
      const file = join(h.shotDir, 'metrics-chart.png');
      await page.locator('#summary').screenshot({ path: file });
      h.expect(statSync(file).size > 0, `${file} is empty`);
      return relative(h.repo, file);
    });
  }
  await h.check('metrics chart: the form with an empty step gets a chosen one', async () => {
    await page.goto(h.at('/dashboard/metrics'), { waitUntil: 'load' });
    await page.locator('#summary-form input[name=type]').fill(TYPE);
    await page.locator('#summary-form input[name=period]').fill('hourly');
    await page.locator('#summary-form input[name=step]').fill('');
    const loaded = page.waitForEvent('load', { timeout: 10_000 });
    await page.locator('#summary-form [type=submit]').click();
    await loaded;
    const c = await readChart(page);
    h.expect(c, 'no chart');
    h.expect(c.caption.includes('(chosen)') && c.caption.includes('60 steps'), c.caption);
    return c.caption.split('·')[0].trim();
  });
  await refusals(h, page);
  await context.close();
  await withoutJavaScript(browser, h);
}

/** Axes, caption and the summary under the chart. */
async function check2(h, page) {
  await h.check('metrics chart: HH:MM time labels that do not overlap, and value labels', async () => {
    const c = await readChart(page);
    h.expect(c.x.length >= 2 && c.x.every((l) => /^\d\d:\d\d$/.test(l)), `x labels ${JSON.stringify(c.x)}`);
    h.expect(c.overlaps === 0, `${c.overlaps} overlapping x labels: ${JSON.stringify(c.x)}`);
    h.expect(c.y.length >= 2 && c.y.every((l) => /^-?[\d.]+(e-?\d+)?$/.test(l)), `y labels ${JSON.stringify(c.y)}`);
    return `${c.x.join(' ')} | ${c.y.join(' ')}`;
  });
  await h.check('metrics chart: the caption says the step, the steps and the Cache-Status; the summary follows', async () => {
    const c = await readChart(page);
    for (const part of ['Step 1m', '60 steps', 'Cache-Status: tally;']) {
      h.expect(c.caption.includes(part), `no ${JSON.stringify(part)} in ${JSON.stringify(c.caption)}`);
    }
    h.expect(!c.caption.includes('(chosen)'), 'a step was asked for');
    h.expect(c.factsAfter, 'no dl.facts after #series-chart');
  });
}

/** What the API refuses, the page says in the API's words; what was typed is text. */
async function refusals(h, page) {
  const cases = [
    ['period=7d&step=1m', '422', 'the smallest step allowed is 7m'],
    ['period=hourly&step=7s', '422', 'must be 1s, 2s, 3s'],
    ['period=hourly&step=soon', '400', "must be a duration such as '1m'"],
  ];
  for (const [query, status, words] of cases) {
    await h.check(`metrics chart: ${query} shows the API's ${status} message`, async () => {
      const res = await page.goto(h.at(`/dashboard/metrics?type=cpu&${query}`), { waitUntil: 'load' });
      h.expect(res?.status() === 200, `status ${res?.status()}`);
      const shown = await page.evaluate(() => document.querySelector('[data-series-refused]')
        && { status: document.querySelector('[data-series-refused]').dataset.seriesRefused,
          text: document.querySelector('[data-series-refused]').innerText });
      h.expect(shown, 'no [data-series-refused]');
      h.expect(shown.status === status && shown.text.includes(words), h.brief(shown.text));
      const stream = await page.evaluate(() => document.body.dataset.stream);
      h.expect(stream === '/dashboard/stream?page=metrics', `data-stream=${stream}`);
    });
  }
  const img = '"><img src=x onerror=alert(2)>';
  await h.check(`metrics chart: ${h.XSS} as type and markup as step show as text`, async () => {
    const q = new URLSearchParams({ type: h.XSS, period: 'hourly', step: img });
    await page.goto(h.at(`/dashboard/metrics?${q}`), { waitUntil: 'load' });
    const found = await page.evaluate(() => ({
      text: document.querySelector('#summary')?.innerText ?? '',
      injected: document.querySelectorAll('#summary img, #summary script').length,
    }));
    h.expect(found.text.includes(h.XSS) && found.text.includes(img), h.brief(found.text));
    h.expect(found.injected === 0, `${found.injected} injected elements`);
  });
}

/** Without JavaScript the page has the chart as of its load. */
async function withoutJavaScript(browser, h) {
  const context = await browser.newContext({ javaScriptEnabled: false });
  h.watch(context, 'series, no JavaScript');
  const page = await h.newPage(context);
  if (await h.open(page, CHART)) {
    await h.check('metrics chart without JavaScript: the svg is there, with its axes', async () => {
      const conn = await page.locator('#conn').textContent();
      h.expect(conn.trim() === 'static', `live.js ran: #conn says ${JSON.stringify(conn)}`);
      const c = await readChart(page);
      h.expect(c && c.avg.startsWith('M') && c.x.length >= 2 && c.y.length >= 2, JSON.stringify(c)?.slice(0, 120));
    });
  }
  await context.close();
}
