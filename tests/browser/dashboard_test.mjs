// Browser tests of the dashboard: Debian's Chromium driven by playwright-core, against a real
// `crowdgate serve` on a scratch database. Run by ctest (label browser): node dashboard_test.mjs.
// Env: CROWDGATE_BIN (the binary), CROWDGATE_SOURCE_DIR (the repository). Screenshots of every page
// visited go to tests/browser/artifacts/ when a scenario fails; the run page is always kept there as
// dashboard-run.png (the README's picture: copy it to docs/).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const bin = process.env.CROWDGATE_BIN;
const src = process.env.CROWDGATE_SOURCE_DIR || path.resolve(here, '../..');
const SKIP = 77;
if (!bin) { console.error('CROWDGATE_BIN is not set'); process.exit(2); }
let chromium;
try { ({ chromium } = require('playwright-core')); } catch {
  console.error('playwright-core is missing: run scripts/setup.sh'); process.exit(SKIP);
}
if (!fs.existsSync('/usr/bin/chromium')) { console.error('/usr/bin/chromium is missing: run scripts/setup.sh'); process.exit(SKIP); }

const artifacts = path.join(here, 'artifacts');
fs.mkdirSync(artifacts, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-browser-'));
const db = path.join(tmp, 'cg.db');
const TOKEN = 'browser-test-requester-token-0123456789';

function cg(...args) {
  return execFileSync(bin, ['--db', db, ...args], { encoding: 'utf8', env: { ...process.env, CROWDGATE_REQUESTER_TOKEN: TOKEN } });
}

// A copy of the sentiment example whose template also shows the worker's comment, and a second
// run of 10,000 one-copy units for paging.
function prepareRuns() {
  const ex = path.join(src, 'examples/sentiment');
  const dir = path.join(tmp, 'sentiment');
  fs.cpSync(ex, dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'task.html'), '\n<p class="comment">${comment}</p>\n<script>window.parent.__templateRan = 1;</script>\n');
  cg('qual', 'create', 'sentiment-blocked');
  const run = cg('launch', path.join(dir, 'config.yaml')).trim().split('\n').pop();
  const big = path.join(tmp, 'big');
  fs.mkdirSync(big);
  fs.writeFileSync(path.join(big, 'task.html'), '<p>${text}</p><input name="label">\n');
  fs.writeFileSync(path.join(big, 'units.jsonl'), Array.from({ length: 10000 }, (_, i) => JSON.stringify({ text: `item ${i}` })).join('\n') + '\n');
  fs.writeFileSync(path.join(big, 'config.yaml'), [
    'task: {task_name: big, allowed_concurrent: 1, assignment_duration_in_seconds: 600, maximum_units_per_worker: 0}',
    'blueprint: {type: static_html, task_source: task.html, data: units.jsonl, units_per_item: 1}',
    'qualifications: []', 'provider: {type: local, trust_worker_param: true}', ''].join('\n'));
  const bigRun = cg('launch', path.join(big, 'config.yaml')).trim().split('\n').pop();
  return { run, bigRun, dir };
}

function startServer() {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['--db', db, 'serve', '--port', '0'], { env: { ...process.env, CROWDGATE_REQUESTER_TOKEN: TOKEN } });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/serving on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve({ proc: p, base: `http://127.0.0.1:${m[1]}` });
    });
    p.on('exit', (code) => reject(new Error('serve exited ' + code + ': ' + err)));
  });
}

async function http(base, method, p, body, headers = {}) {
  const res = await fetch(base + p, { method, headers: { 'Content-Type': 'application/json', ...headers }, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, json: await res.json().catch(() => null) };
}

const results = [];
const consoleErrors = [];
let page;
async function scenario(name, fn) {
  const shots = [];
  try {
    await fn(shots);
    results.push([name, 'ok']);
    console.log('ok   ' + name);
  } catch (e) {
    results.push([name, 'FAIL']);
    console.log('FAIL ' + name + ': ' + (e.stack || e));
    const file = path.join(artifacts, name.replace(/[^a-z0-9]+/gi, '-') + '.png');
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log('     screenshot: ' + file);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

const { run, bigRun } = prepareRuns();
const { proc, base } = await startServer();
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  let watchConsole = true;
  // The one expected error: this test's template carries a <script> on purpose, and Chromium reports
  // the preview frame's sandbox refusing it. That is the guard working, in the preview, not the dashboard.
  const sandboxRefusal = /^Blocked script execution in '[^']*\/api\/v1\/requester\/agents\/[^']*\/preview' because the document's frame is sandboxed/;
  page.on('console', (m) => {
    if (watchConsole && m.type() === 'error' && !sandboxRefusal.test(m.text())) consoleErrors.push(page.url() + ': ' + m.text());
  });
  page.on('pageerror', (e) => { if (watchConsole) consoleErrors.push(page.url() + ': ' + e.message); });

  await scenario('wrong token refused', async () => {
    await page.goto(base + '/dashboard/');
    await page.fill('#token', 'not-the-token');
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#login-error:has-text("Wrong requester token")');
    watchConsole = false;  // the 401 of the refused login is logged by Chromium itself
    consoleErrors.length = 0;
  });
  watchConsole = true;

  await scenario('log in', async () => {
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector(`.run-card[data-run="${run}"]`);
    const cookies = await context.cookies();
    const c = cookies.find((x) => x.name === 'cg_session');
    assert(c && c.httpOnly && c.sameSite === 'Strict', 'session cookie must be HttpOnly and SameSite=Strict: ' + JSON.stringify(c));
  });

  await scenario('a submission carrying <script> and <img onerror> runs nothing', async () => {
    watchConsole = false;  // the sandbox's own refusals are logged as errors: they are the point
    const w = await http(base, 'POST', `/api/v1/runs/${run}/work`, { worker: 'xss-tester' });
    // The onboarding quiz comes first for a new worker: answer it right, then take a unit.
    let a = w.json;
    const answers = JSON.parse(fs.readFileSync(path.join(src, 'examples/sentiment/onboarding_answer.json'), 'utf8'));
    if (a.outcome === 'onboarding') {
      await http(base, 'POST', `/api/v1/agents/${a.agent_id}/submit`, { data: answers }, { Authorization: 'Bearer ' + a.token });
      a = (await http(base, 'POST', `/api/v1/runs/${run}/work`, { worker: 'xss-tester' })).json;
    }
    assert(a.outcome === 'unit', 'no unit for the xss tester: ' + JSON.stringify(a));
    const evil = { label: 'positive', comment: '<img src=x onerror="window.parent.__pwned=1"><script>window.parent.__pwned=2</script>' };
    const s = await http(base, 'POST', `/api/v1/agents/${a.agent_id}/submit`, { data: evil }, { Authorization: 'Bearer ' + a.token });
    assert(s.status === 200, 'submit failed: ' + JSON.stringify(s.json));
    await page.goto(`${base}/dashboard/#/review/${run}?worker=xss-tester&kind=any`);
    await page.waitForSelector('#answer');
    await page.frameLocator('iframe.preview').locator('p.comment').waitFor();
    await page.waitForTimeout(500);
    const flags = await page.evaluate(() => [window.__pwned, window.__templateRan]);
    assert(flags[0] === undefined && flags[1] === undefined, 'a script ran: ' + JSON.stringify(flags));
    const shown = await page.textContent('#answer');
    assert(shown.includes('<script>'), 'the answer is shown as text');
    assert(await page.$$eval('#answer img, #answer script', (x) => x.length) === 0, 'the answer became elements');
    watchConsole = true;
  });

  await scenario('runs page updates while a simulated crowd fills a run', async () => {
    await page.goto(`${base}/dashboard/#/runs`);
    await page.waitForSelector(`.run-card[data-run="${run}"] [data-testid=done]`);
    const before = await page.textContent(`.run-card[data-run="${run}"] [data-testid=done]`);
    const sim = spawn(bin, ['simulate', `${base}/runs/${run}`, '--workers', '12', '--profile', 'good:0.95,careless:0.7,spammer:0.34',
      '--answers', path.join(src, 'examples/sentiment/truth.jsonl'), '--answers', path.join(src, 'examples/sentiment/golds.jsonl'),
      '--answers', path.join(src, 'examples/sentiment/onboarding_truth.jsonl'), '--threads', '1'], { stdio: 'ignore' });
    const simDone = new Promise((r) => sim.on('exit', r));
    await page.waitForFunction(([sel, b]) => { const el = document.querySelector(sel); return el && el.textContent !== b; },
      [`.run-card[data-run="${run}"] [data-testid=done]`, before], { timeout: 20000 });
    await simDone;
    await page.waitForTimeout(2500);
    const after = await page.textContent(`.run-card[data-run="${run}"] [data-testid=done]`);
    assert(after !== before, `the runs page did not update: ${before} -> ${after}`);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-runs.png') });
  });

  await scenario('run page', async () => {
    await page.goto(`${base}/dashboard/#/run/${run}`);
    await page.waitForSelector('[data-testid=workers] tbody tr');
    await page.waitForSelector('.uplot, .chart p');
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-run.png'), fullPage: false });
    // Sorting: click "Gold accuracy" and see the rows in order.
    await page.click('[data-testid=workers] th button:has-text("Units")');
    const units = await page.$$eval('[data-testid=workers] tbody tr td:nth-child(6)', (tds) => tds.map((t) => Number(t.textContent)));
    assert(units.every((v, i) => i === 0 || units[i - 1] <= v), 'units column not sorted: ' + units);
    // Aggregated labels: a table of items with their label, and every worker's agreement filled in.
    await page.waitForSelector('[data-testid=aggregate] tbody tr');
    const labels = await page.$$eval('[data-testid=aggregate] tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
    assert(labels.length > 0 && labels.every((l) => l.length > 0 && l !== '—'), 'aggregated labels missing: ' + labels);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=workers] tbody tr td:nth-child(8)')]
      .some((td) => /%$/.test(td.textContent)));
    await page.selectOption('#aggregate-method', 'majority');
    await page.waitForFunction(() => /items, /.test(document.querySelector('#aggregate').textContent) &&
      !/iterations/.test(document.querySelector('#aggregate').textContent));
  });

  let reviewed;
  await scenario('review: rendered template, reject with a reason, seen in export', async () => {
    await page.goto(`${base}/dashboard/#/review/${run}`);
    await page.waitForSelector('[data-testid=units] tbody tr');
    const frame = page.frameLocator('iframe.preview');
    await frame.locator('h1:has-text("What is the sentiment")').waitFor();
    const unitText = await page.textContent('#review-detail b');
    reviewed = Number(unitText.replace(/\D/g, ''));
    await page.fill('#reason', 'the answer ignores the sentence');
    await page.click('#reject');
    await page.waitForSelector('#review-msg:has-text("reject: 1 unit")');
    const rows = cg('export', run).trim().split('\n').map((l) => JSON.parse(l));
    const row = rows.find((r) => r.unit_id === reviewed && r.kind === 'unit' && r.status === 'rejected');
    assert(row, 'export does not show unit ' + reviewed + ' rejected');
    // Keyboard: "a" approves the next one.
    await page.locator('body').press('a');
    await page.waitForSelector('#review-msg:has-text("approve: 1 unit")');
  });

  await scenario('block from the worker page refuses the next work request', async () => {
    const workers = await http(base, 'GET', `/api/v1/requester/runs/${run}/workers?limit=5`, null, { Authorization: 'Bearer ' + TOKEN });
    const victim = workers.json.items[0].worker;
    await page.goto(`${base}/dashboard/#/worker/${encodeURIComponent(victim)}`);
    await page.waitForSelector('#block');
    await page.fill('#block input[name=reason]', 'spam');
    await page.click('#block button[type=submit]');
    await page.waitForSelector('#worker-msg:has-text("blocked")');
    const w = await http(base, 'POST', `/api/v1/runs/${run}/work`, { worker: victim });
    assert(w.json.outcome === 'not_qualified' && w.json.reason === 'blocked', 'not refused: ' + JSON.stringify(w.json));
  });

  await scenario('grant with expiry', async () => {
    await page.goto(`${base}/dashboard/#/qual/sentiment-blocked`);
    await page.waitForSelector('#grant');
    await page.fill('#grant input[name=worker]', 'erin');
    await page.fill('#grant input[name=expires]', '30d');
    await page.fill('#grant input[name=reason]', 'trial');
    await page.click('#grant button[type=submit]');
    await page.waitForSelector('[data-testid=holders] td:has-text("local:erin")');
    const row = await page.textContent('[data-testid=holders] tr:has-text("local:erin")');
    assert(/20\d\d-\d\d-\d\d/.test(row.split('local:erin')[1]), 'no expiry shown: ' + row);
  });

  await scenario('CSV import of a block list', async () => {
    const csv = path.join(tmp, 'block.csv');
    fs.writeFileSync(csv, 'worker\nmallory\ntrudy,1\n');
    await page.setInputFiles('#import input[type=file]', csv);
    await page.click('#import button[type=submit]');
    await page.waitForSelector('#qual-msg:has-text("imported 2 rows")');
    await page.waitForSelector('[data-testid=holders] td:has-text("local:trudy")');
    const w = await http(base, 'POST', `/api/v1/runs/${run}/work`, { worker: 'mallory' });
    assert(w.json.reason === 'blocked', 'imported block not applied: ' + JSON.stringify(w.json));
  });

  await scenario('pagination across 10,000 units', async () => {
    execFileSync(bin, ['simulate', `${base}/runs/${bigRun}`, '--workers', '200', '--threads', '8', '--prefix', 'big'], { stdio: 'ignore' });
    await page.goto(`${base}/dashboard/#/review/${bigRun}`);
    await page.waitForSelector('[data-testid=units] tbody tr');
    const first = await page.textContent('[data-testid=units] tbody tr td');
    await page.click('#next-page');
    await page.waitForFunction((f) => document.querySelector('[data-testid=units] tbody tr td')?.textContent !== f, first);
    // Every unit once, through the cursor, from the page's own session.
    const seen = await page.evaluate(async (r) => {
      const ids = new Set();
      let cursor = '';
      for (let i = 0; i < 100; i++) {
        const res = await fetch(`/api/v1/requester/runs/${r}/units?kind=unit&limit=1000` + (cursor ? '&cursor=' + cursor : ''));
        const page = await res.json();
        page.items.forEach((x) => ids.add(x.unit_id));
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      return ids.size;
    }, bigRun);
    assert(seen === 10000, 'paged through ' + seen + ' units, expected 10000');
  });

  await scenario('every page at 1280x800 and on a phone', async () => {
    for (const vp of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
      await page.setViewportSize(vp);
      for (const [hash, sel] of [['#/runs', '.run-card'], [`#/run/${run}`, '[data-testid=workers]'], [`#/review/${run}`, '#review-detail'],
        ['#/quals', '[data-testid=quals]'], ['#/qual/sentiment-blocked', '[data-testid=holders]'], ['#/worker/local:erin', '#block, h1'], ['#/providers', '#outbox-counts']]) {
        await page.goto(`${base}/dashboard/${hash}`);
        await page.waitForSelector(sel);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert(overflow <= 1, `${hash} at ${vp.width}px scrolls sideways by ${overflow}px`);
        await page.screenshot({ path: path.join(artifacts, `page-${vp.width}-${hash.replace(/[^a-z0-9]+/gi, '-')}.png`) });
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await scenario('no console errors on any page', async () => {
    assert(consoleErrors.length === 0, 'console errors:\n' + consoleErrors.join('\n'));
  });

  await scenario('CSRF: a change without the token is refused', async () => {
    const r = await page.evaluate(async (runId) => {
      const res = await fetch(`/api/v1/requester/runs/${runId}/review`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'approve', all: true }) });
      return [res.status, await res.json()];
    }, run);
    assert(r[0] === 403 && r[1].error.code === 'permission_denied', 'not refused: ' + JSON.stringify(r));
  });

  await scenario('log out', async () => {
    await page.goto(`${base}/dashboard/#/runs`);
    await page.waitForSelector('#logout');
    await page.click('#logout');
    await page.waitForSelector('#login');
    const r = await page.evaluate(async () => (await fetch('/api/v1/requester/runs')).status);
    assert(r === 401, 'still logged in after logout: ' + r);
  });
} finally {
  await browser.close();
  proc.kill('SIGTERM');
  fs.rmSync(tmp, { recursive: true, force: true });
}
const failed = results.filter(([, s]) => s !== 'ok');
console.log(`${results.length - failed.length}/${results.length} scenarios passed`);
process.exit(failed.length ? 1 : 0);
