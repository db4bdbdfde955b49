// The dashboard: a hash-routed page per view (runs, run, review, qualifications, worker, providers),
// over the requester API only. Pages that watch a serving run poll every two seconds.
import { api, login, logout, q, restoreSession, ApiError } from './api.js';
import { h, fmtNum, fmtPct, fmtTime, sortableTable } from './dom.js';
import { throughputChart, histogram } from './charts.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let timer = null;
let pageToken = 0;  // bumps on navigation so a late answer of an old page draws nothing

function poll(fn, ms = 2000) {
  clearInterval(timer);
  timer = setInterval(fn, ms);
}

function show(...children) {
  main.replaceChildren(...children);
}

function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
}

const enc = encodeURIComponent;

// ---- login -----------------------------------------------------------------------------------
function loginPage(message) {
  nav.hidden = true;
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', placeholder: 'Requester token', required: true });
  const msg = h('p', { class: 'error', id: 'login-error', role: 'alert' }, message || '');
  const form = h('form', { class: 'card login', id: 'login', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await login(input.value.trim());
      nav.hidden = false;
      route();
    } catch (err) {
      msg.textContent = err instanceof ApiError && err.status === 401 ? 'Wrong requester token.' : String(err.message || err);
    }
  } }, h('h1', {}, 'Log in'), h('p', { class: 'muted' }, 'Use the requester token `crowdgate serve` printed (or CROWDGATE_REQUESTER_TOKEN).'),
  input, h('button', { class: 'primary', type: 'submit' }, 'Log in'), msg);
  show(form);
  input.focus();
}

// ---- runs ------------------------------------------------------------------------------------
function unitsBar(units, total) {
  const bar = h('div', { class: 'bar', title: Object.entries(units).map(([k, n]) => `${k}: ${n}`).join(', ') });
  for (const [k, n] of Object.entries(units)) {
    const seg = h('span', { class: 's-' + k });
    seg.style.width = total ? (100 * n / total) + '%' : '0';
    bar.append(seg);
  }
  return bar;
}

function done(units) {
  return (units.completed || 0) + (units.accepted || 0) + (units.rejected || 0) + (units.soft_rejected || 0);
}

async function runsPage(token) {
  const list = h('div', { id: 'runs' });
  show(h('h1', {}, 'Runs'), list);
  async function draw() {
    const page = await api.get('/api/v1/requester/runs' + q({ limit: 100 }));
    if (token !== pageToken) return;
    if (page.items.length === 0) {
      list.replaceChildren(h('p', { class: 'muted' }, 'No runs yet: `crowdgate launch CONFIG.yaml`, or `crowdgate demo`.'));
      return;
    }
    const cards = [];
    for (const r of page.items) {
      const finished = done(r.units);
      const tp = await api.get(`/api/v1/requester/runs/${enc(r.run_id)}/throughput` + q({ bucket_s: 10 })).catch(() => ({ points: [] }));
      const recent = tp.points.slice(-6).reduce((s, p) => s + p.submitted, 0) / 60;  // per second over the last minute
      const left = r.units_total - finished;
      const eta = recent > 0 && left > 0 ? Math.round(left / recent) + ' s' : (left === 0 ? 'done' : '–');
      cards.push(h('div', { class: 'card run-card', 'data-run': r.run_id },
        h('div', { class: 'row' }, h('a', { href: `#/run/${enc(r.run_id)}` }, h('b', {}, r.task_name)), h('span', { class: 'muted' }, r.run_id), h('span', {}, r.status)),
        unitsBar(r.units, r.units_total),
        h('div', { class: 'stats' },
          h('div', { class: 'stat' }, h('b', { 'data-testid': 'done' }, `${fmtNum(finished)} / ${fmtNum(r.units_total)}`), 'units done'),
          h('div', { class: 'stat' }, h('b', {}, fmtNum(r.gold_served)), 'golds served'),
          h('div', { class: 'stat' }, h('b', {}, fmtNum(r.screening_served)), 'screening served'),
          h('div', { class: 'stat' }, h('b', {}, eta), 'time to finish')),
        throughputChart(tp.points, 10, 260)));
    }
    list.replaceChildren(...cards);
  }
  await draw();
  poll(() => draw().catch(() => {}));
}

// ---- run -------------------------------------------------------------------------------------
async function runPage(token, runId) {
  const head = h('div');
  const charts = h('div', { class: 'grid' });
  const workers = h('div');
  const timeline = h('div');
  const labels = h('div', { class: 'card', id: 'aggregate' });
  show(head, charts, h('h2', {}, 'Workers'), workers, h('h2', {}, 'Aggregated labels'), labels,
    h('h2', {}, 'Disqualifications and blocks'), timeline);
  let cursor = '';
  // Aggregation reads every submission: it is fetched beside the page, not in its way, and at
  // most every 15 s (the server keeps the result until the run's counts move).
  let method = 'dawid-skene';
  let agreement = new Map();  // worker -> share of their labels equal to the aggregated label
  let medians = new Map();    // worker -> median seconds per unit
  let aggregatedAt = 0;
  let lastRows = [];
  async function aggregate(force) {
    if (!force && Date.now() - aggregatedAt < 15000) return;
    aggregatedAt = Date.now();
    const base = `/api/v1/requester/runs/${enc(runId)}/aggregate`;
    try {
      const [items, ws] = await Promise.all([api.get(base + q({ method, limit: 20 })),
        api.get(base + q({ method, view: 'workers', limit: 1000 }))]);
      if (token !== pageToken) return;
      agreement = new Map(ws.items.map((w) => [w.worker, w.agreement]));
      medians = new Map(ws.items.map((w) => [w.worker, w.median_seconds_per_unit]));
      drawLabels(items);
      drawWorkers(lastRows);
    } catch (e) {
      if (token === pageToken) labels.replaceChildren(errorBox(e));
    }
  }
  function drawLabels(res) {
    const select = h('select', { id: 'aggregate-method', 'aria-label': 'Aggregation method',
      onchange: (e) => { method = e.target.value; aggregate(true); } },
      ...['dawid-skene', 'majority', 'wawa'].map((m) => h('option', { value: m, selected: m === method }, m)));
    labels.replaceChildren(
      h('div', { class: 'row' }, select, h('span', { class: 'muted' },
        `${fmtNum(res.items_total)} items, ${fmtNum(res.judgments)} labels from ${fmtNum(res.workers_total)} workers` +
        (res.method === 'dawid-skene' ? `, ${res.converged ? 'converged' : 'stopped'} after ${res.iterations} iterations` : '') +
        (res.golds_used ? `, ${fmtNum(res.golds_used)} gold answers as known truths` : ''))),
      res.items.length === 0 ? h('p', { class: 'muted' }, 'No labels submitted yet.') :
        sortableTable([
          { key: 'item', label: 'Item' },
          { key: 'label', label: 'Label', render: (r) => r.label === null ? '—' : String(r.label) },
          { key: 'confidence', label: 'Confidence', render: (r) => fmtPct(r.confidence) },
          { key: 'labels', label: 'Labels' },
        ], res.items, { testid: 'aggregate', noFilter: true }),
      h('p', { class: 'muted' }, 'All items: ', h('code', {}, `crowdgate aggregate ${runId} --method ${method}`),
        ' or the requester API (', h('code', {}, 'GET …/aggregate'), ').'));
  }
  function drawWorkers(rows) {
    for (const r of rows) {
      r.agreement = agreement.has(r.worker) ? agreement.get(r.worker) : null;
      r.median_seconds_per_unit = medians.has(r.worker) ? medians.get(r.worker) : null;
    }
    workers.replaceChildren(sortableTable([
      { key: 'worker', label: 'Worker', render: (r) => h('a', { href: `#/worker/${enc(r.worker)}` }, r.worker) },
      { key: 'onboarding', label: 'Onboarding' },
      { key: 'golds_right', label: 'Golds right' },
      { key: 'golds_wrong', label: 'Golds wrong' },
      { key: 'gold_accuracy', label: 'Gold accuracy', render: (r) => fmtPct(r.gold_accuracy) },
      { key: 'units', label: 'Units' },
      { key: 'median_seconds_per_unit', label: 'Median s/unit', render: (r) => fmtNum(r.median_seconds_per_unit, 1) },
      { key: 'agreement', label: 'Agreement', render: (r) => fmtPct(r.agreement) },
      { key: 'state', label: 'State', render: (r) => h('span', { class: 'state-' + r.state }, r.state) },
      { key: 'reason', label: 'Reason' },
    ], rows, { testid: 'workers', filterPlaceholder: 'Filter workers…' }),
    h('div', { class: 'row' },
      cursor ? h('button', { type: 'button', onclick: () => { cursor = ''; draw(); } }, 'First page') : null,
      lastNext ? h('button', { type: 'button', onclick: () => { cursor = lastNext; draw(); } }, 'Next workers') : null));
  }
  let lastNext = null;
  async function draw() {
    const [run, tp, wpage, tl] = await Promise.all([
      api.get(`/api/v1/requester/runs/${enc(runId)}`),
      api.get(`/api/v1/requester/runs/${enc(runId)}/throughput` + q({ bucket_s: 10 })),
      api.get(`/api/v1/requester/runs/${enc(runId)}/workers` + q({ limit: 200, cursor })),
      api.get(`/api/v1/requester/runs/${enc(runId)}/timeline` + q({ limit: 200 })),
    ]);
    if (token !== pageToken) return;
    const finished = done(run.units);
    head.replaceChildren(
      h('h1', {}, run.task_title || run.task_name),
      h('div', { class: 'row' }, h('span', { class: 'muted' }, run.run_id), h('span', {}, run.status),
        h('a', { href: `#/review/${enc(runId)}` }, 'Review submissions →')),
      h('div', { class: 'card' }, unitsBar(run.units, run.units_total),
        h('div', { class: 'stats' },
          h('div', { class: 'stat' }, h('b', { id: 'progress' }, `${fmtNum(finished)} / ${fmtNum(run.units_total)}`), 'units done'),
          ...Object.entries(run.units).map(([k, n]) => h('div', { class: 'stat' }, h('b', {}, fmtNum(n)), k)),
          h('div', { class: 'stat' }, h('b', {}, fmtNum(run.gold_served)), 'golds served'))));
    const accs = wpage.items.map((w) => w.gold_accuracy).filter((x) => x !== null);
    charts.replaceChildren(
      h('div', { class: 'card' }, h('h2', {}, 'Throughput (submissions per 10 s)'), throughputChart(tp.points, 10, 380)),
      h('div', { class: 'card' }, h('h2', {}, 'Gold accuracy (workers)'), histogram(accs, 10)),
      h('div', { class: 'card' }, h('h2', {}, 'Disqualifications over time'), throughputChart(bucketTimes(tl.items), 60, 380, 'events')));
    lastRows = wpage.items.map((w) => ({ ...w }));
    lastNext = wpage.next_cursor;
    drawWorkers(lastRows);
    aggregate(false);
    timeline.replaceChildren(tl.items.length === 0 ? h('p', { class: 'muted' }, 'Nobody disqualified or blocked yet.') :
      sortableTable([
        { key: 'at', label: 'When', render: (r) => fmtTime(r.at) },
        { key: 'worker', label: 'Worker', render: (r) => h('a', { href: `#/worker/${enc(r.worker)}` }, r.worker) },
        { key: 'qualification', label: 'Qualification' },
        { key: 'new_value', label: 'Value', render: (r) => r.new_value === null ? 'revoked' : r.new_value },
        { key: 'reason', label: 'Reason' },
      ], tl.items, { noFilter: true }));
  }
  await draw();
  poll(() => draw().catch(() => {}), 3000);
}

function bucketTimes(items) {
  const counts = new Map();
  for (const e of items) {
    if (e.new_value === null) continue;
    const t = Math.floor(Date.parse(e.at) / 60000) * 60;
    counts.set(t, (counts.get(t) || 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => ({ t, submitted: n }));
}

// ---- review ----------------------------------------------------------------------------------
async function reviewPage(token, runId, params) {
  const status = params.get('status') || 'completed';
  const worker = params.get('worker') || '';
  const kind = params.get('kind') || 'unit';  // "any": golds and screening units too
  let cursor = params.get('cursor') || '';
  let rows = [];
  let index = 0;
  let next = null;
  const filters = h('form', { class: 'inline', onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    location.hash = `#/review/${enc(runId)}` + q({ status: f.get('status'), worker: f.get('worker'), kind: f.get('kind') });
  } },
  h('select', { name: 'status', 'aria-label': 'Status' }, ['completed', 'approved', 'rejected', 'soft_rejected', ''].map((s) => h('option', { value: s, selected: s === status }, s || 'any status'))),
  h('input', { name: 'worker', placeholder: 'worker', value: worker, 'aria-label': 'Worker' }),
  h('select', { name: 'kind', 'aria-label': 'Kind' }, ['unit', 'gold', 'screening', 'any'].map((k) => h('option', { value: k, selected: k === kind }, k))),
  h('button', { type: 'submit' }, 'Show'));
  const listEl = h('div', { class: 'table-wrap' });
  const detail = h('div', { class: 'card', id: 'review-detail' });
  const msg = h('p', { id: 'review-msg', role: 'status' });
  show(h('h1', {}, 'Review'), h('p', {}, h('a', { href: `#/run/${enc(runId)}` }, '← run'), ' ',
    h('span', { class: 'muted' }, 'Keys: '), h('span', { class: 'kbd' }, 'a'), ' approve ', h('span', { class: 'kbd' }, 'r'), ' reject ',
    h('span', { class: 'kbd' }, 's'), ' soft-reject ', h('span', { class: 'kbd' }, 'j'), '/', h('span', { class: 'kbd' }, 'k'), ' next / previous'),
  filters, msg, h('div', { class: 'review' }, detail, listEl));

  async function load() {
    const page = await api.get(`/api/v1/requester/runs/${enc(runId)}/units` + q({ status, worker, kind: kind === 'any' ? '' : kind, limit: 50, cursor }));
    if (token !== pageToken) return;
    rows = page.items;
    next = page.next_cursor;
    index = Math.min(index, Math.max(rows.length - 1, 0));
    drawList();
    drawDetail();
  }
  function drawList() {
    const table = h('table', { 'data-testid': 'units' }, h('thead', {}, h('tr', {}, ['Unit', 'Worker', 'Status', 'Seconds'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.map((r, i) => h('tr', { class: i === index ? 'sel' : '', onclick: () => { index = i; drawList(); drawDetail(); } },
        h('td', {}, String(r.unit_id)), h('td', {}, r.worker), h('td', {}, r.status), h('td', {}, fmtNum(r.duration_s, 1))))));
    listEl.replaceChildren(table, h('div', { class: 'row' },
      cursor ? h('button', { type: 'button', onclick: () => { cursor = ''; index = 0; load(); } }, 'First page') : null,
      next ? h('button', { type: 'button', id: 'next-page', onclick: () => { cursor = next; index = 0; load(); } }, 'Next page') : null));
  }
  function drawDetail() {
    const r = rows[index];
    if (!r) {
      detail.replaceChildren(h('p', { class: 'muted' }, 'Nothing to review here.'));
      return;
    }
    // The preview is served with a CSP sandbox and framed with an empty sandbox attribute: the
    // template and the answers render, but no script of theirs runs or reaches this page.
    const frame = h('iframe', { class: 'preview', sandbox: '', title: 'Submission preview', src: `/api/v1/requester/agents/${enc(r.agent_id)}/preview` });
    const reason = h('input', { id: 'reason', placeholder: 'Reason (shown to the worker)', size: 40 });
    detail.replaceChildren(
      h('div', { class: 'row' }, h('b', {}, `Unit ${r.unit_id}`), h('a', { href: `#/worker/${enc(r.worker)}` }, r.worker), h('span', {}, r.status)),
      frame,
      h('h2', {}, 'Answer'), h('pre', { id: 'answer' }, JSON.stringify(r.data, null, 2)),
      h('div', { class: 'row' }, reason,
        h('button', { class: 'primary', type: 'button', id: 'approve', onclick: () => act('approve') }, 'Approve'),
        h('button', { class: 'danger', type: 'button', id: 'reject', onclick: () => act('reject') }, 'Reject'),
        h('button', { type: 'button', id: 'soft-reject', onclick: () => act('soft-reject') }, 'Soft-reject')),
      h('div', { class: 'row' },
        h('button', { type: 'button', onclick: () => act('approve', { worker: r.worker }) }, `Approve all of ${r.worker}`),
        h('button', { type: 'button', onclick: () => act('reject', { worker: r.worker }) }, `Reject all of ${r.worker}`),
        h('button', { type: 'button', onclick: () => { if (confirm('Approve every submitted unit of this run?')) act('approve', { all: true }); } }, 'Approve all')));
  }
  async function act(action, target) {
    const r = rows[index];
    if (!r) return;
    const body = { action, ...(target || { units: [r.unit_id] }) };
    const reason = document.getElementById('reason');
    if (reason && reason.value) body.reason = reason.value;
    try {
      const res = await api.post(`/api/v1/requester/runs/${enc(runId)}/review`, body);
      msg.className = 'ok';
      msg.textContent = `${action}: ${res.reviewed} unit(s) changed`;
      await load();
    } catch (e) {
      msg.className = 'error';
      msg.textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
    }
  }
  keyHandler = (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement) return;
    if (e.key === 'a') act('approve');
    else if (e.key === 'r') act('reject');
    else if (e.key === 's') act('soft-reject');
    else if (e.key === 'j' || e.key === 'ArrowDown') { index = Math.min(index + 1, rows.length - 1); drawList(); drawDetail(); }
    else if (e.key === 'k' || e.key === 'ArrowUp') { index = Math.max(index - 1, 0); drawList(); drawDetail(); }
  };
  await load();
}

let keyHandler = null;
document.addEventListener('keydown', (e) => { if (keyHandler) keyHandler(e); });

// ---- qualifications --------------------------------------------------------------------------
async function qualsPage(token) {
  const list = h('div');
  const msg = h('p', { role: 'status' });
  const create = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await api.post('/api/v1/requester/qualifications', { name: f.get('name'), description: f.get('description') });
      e.target.reset();
      await draw();
    } catch (err) { msg.replaceChildren(errorBox(err)); }
  } }, h('input', { name: 'name', placeholder: 'name', required: true, 'aria-label': 'Name' }),
  h('input', { name: 'description', placeholder: 'description', 'aria-label': 'Description' }), h('button', { type: 'submit' }, 'Create'));
  show(h('h1', {}, 'Qualifications'), create, msg, list);
  async function draw() {
    const page = await api.get('/api/v1/requester/qualifications' + q({ limit: 1000 }));
    if (token !== pageToken) return;
    list.replaceChildren(sortableTable([
      { key: 'name', label: 'Name', render: (r) => h('a', { href: `#/qual/${enc(r.name)}` }, r.name) },
      { key: 'description', label: 'Description' },
      { key: 'live_grants', label: 'Holders' },
      { key: 'created_at', label: 'Created', render: (r) => fmtTime(r.created_at) },
    ], page.items, { testid: 'quals' }));
  }
  await draw();
}

async function qualPage(token, name) {
  const holders = h('div');
  const history = h('div');
  const msg = h('p', { id: 'qual-msg', role: 'status' });
  let cursor = '';
  const base = `/api/v1/requester/qualifications/${enc(name)}`;
  const grant = h('form', { class: 'inline', id: 'grant', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = { worker: f.get('worker'), value: Number(f.get('value') || 1) };
    if (f.get('reason')) body.reason = f.get('reason');
    if (f.get('expires')) body.expires = f.get('expires');
    try {
      await api.post(base + '/grant', body);
      msg.className = 'ok';
      msg.textContent = `granted to ${body.worker}`;
      e.target.reset();
      await draw();
    } catch (err) { msg.className = 'error'; msg.textContent = `${err.code}: ${err.message}`; }
  } }, h('input', { name: 'worker', placeholder: 'worker', required: true, 'aria-label': 'Worker' }),
  h('input', { name: 'value', placeholder: 'value (1)', size: 6, 'aria-label': 'Value' }),
  h('input', { name: 'expires', placeholder: 'expires (30d, 12h)', size: 14, 'aria-label': 'Expires' }),
  h('input', { name: 'reason', placeholder: 'reason', 'aria-label': 'Reason' }), h('button', { class: 'primary', type: 'submit' }, 'Grant'));
  const importForm = h('form', { class: 'inline', id: 'import', onsubmit: async (e) => {
    e.preventDefault();
    const file = e.target.elements.file.files[0];
    const text = file ? await file.text() : e.target.elements.csv.value;
    try {
      const res = await api.post(base + '/import', { csv: text, reason: e.target.elements.reason.value || 'dashboard import' });
      msg.className = 'ok';
      msg.textContent = `imported ${res.rows} rows (${res.granted} new, ${res.changed} changed)`;
      e.target.reset();
      await draw();
    } catch (err) { msg.className = 'error'; msg.textContent = `${err.code}: ${err.message}`; }
  } }, h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', 'aria-label': 'CSV file' }),
  h('textarea', { name: 'csv', rows: 2, cols: 30, placeholder: 'or paste worker[,value] lines', 'aria-label': 'CSV text' }),
  h('input', { name: 'reason', placeholder: 'reason', 'aria-label': 'Import reason' }), h('button', { type: 'submit' }, 'Import CSV'));
  show(h('h1', {}, name), h('p', {}, h('a', { href: '#/quals' }, '← qualifications')),
    h('div', { class: 'card' }, h('h2', {}, 'Grant'), grant, h('h2', {}, 'Import (allow / block list)'), importForm, msg),
    h('h2', {}, 'Holders'), holders, h('h2', {}, 'History'), history);
  async function draw() {
    const [page, hist] = await Promise.all([api.get(base + '/holders' + q({ limit: 100, cursor })),
      api.get('/api/v1/requester/history' + q({ qualification: name, limit: 100 }))]);
    if (token !== pageToken) return;
    holders.replaceChildren(sortableTable([
      { key: 'worker', label: 'Worker', render: (r) => h('a', { href: `#/worker/${enc(r.worker)}` }, r.worker) },
      { key: 'value', label: 'Value' },
      { key: 'granted_at', label: 'Granted', render: (r) => fmtTime(r.granted_at) },
      { key: 'expires_at', label: 'Expires', render: (r) => fmtTime(r.expires_at) },
      { key: 'revoke', label: '', render: (r) => h('button', { type: 'button', onclick: async () => {
        const reason = prompt(`Revoke ${name} from ${r.worker}: reason?`, '');
        if (reason === null) return;
        try { await api.post(base + '/revoke', { worker: r.worker, reason }); await draw(); } catch (err) { msg.textContent = err.message; }
      } }, 'Revoke') },
    ], page.items, { testid: 'holders' }), h('div', { class: 'row' },
      cursor ? h('button', { type: 'button', onclick: () => { cursor = ''; draw(); } }, 'First page') : null,
      page.next_cursor ? h('button', { type: 'button', onclick: () => { cursor = page.next_cursor; draw(); } }, 'Next holders') : null));
    history.replaceChildren(historyTable(hist.items));
  }
  await draw();
}

function historyTable(items) {
  return sortableTable([
    { key: 'at', label: 'When', render: (r) => fmtTime(r.at) },
    { key: 'kind', label: 'Change' },
    { key: 'worker', label: 'Worker' },
    { key: 'qualification', label: 'Qualification' },
    { key: 'new_value', label: 'Value', render: (r) => r.new_value ?? '–' },
    { key: 'expires_at', label: 'Expires', render: (r) => fmtTime(r.expires_at) },
    { key: 'actor', label: 'By' },
    { key: 'reason', label: 'Reason' },
  ], items, { noFilter: true });
}

// ---- worker ----------------------------------------------------------------------------------
async function workerPage(token, name) {
  const [w, all] = await Promise.all([api.get(`/api/v1/requester/workers/${enc(name)}`),
    api.get('/api/v1/requester/runs' + q({ status: 'open', limit: 100 }))]);
  if (token !== pageToken) return;
  const msg = h('p', { id: 'worker-msg', role: 'status' });
  // Their runs first, then every other open run: a worker can be blocked before they ever come.
  const runs = [...new Set([...w.runs.map((r) => r.run_id), ...all.items.map((r) => r.run_id)])];
  const block = h('form', { class: 'inline', id: 'block', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = { run_id: f.get('run_id'), reason: f.get('reason') };
    if (f.get('expires')) body.expires = f.get('expires');
    try {
      const res = await api.post(`/api/v1/requester/workers/${enc(name)}/block`, body);
      msg.className = 'ok';
      msg.textContent = `blocked (${res.qualification})`;
    } catch (err) { msg.className = 'error'; msg.textContent = `${err.code}: ${err.message}`; }
  } }, h('select', { name: 'run_id', 'aria-label': 'Run' }, runs.map((r) => h('option', { value: r }, r))),
  h('input', { name: 'reason', placeholder: 'reason', required: true, 'aria-label': 'Reason' }),
  h('input', { name: 'expires', placeholder: 'expires (optional)', 'aria-label': 'Expires' }),
  h('button', { class: 'danger', type: 'submit' }, 'Block'));
  const linkOut = h('pre', { id: 'link', hidden: true });
  const link = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      const res = await api.post(`/api/v1/requester/runs/${enc(f.get('run_id'))}/links`, { worker: name.replace(/^local:/, '') });
      linkOut.textContent = location.origin + res.link;
    } catch (err) { linkOut.textContent = `${err.code}: ${err.message}`; }
    linkOut.hidden = false;
  } }, h('select', { name: 'run_id', 'aria-label': 'Run for the link' }, runs.map((r) => h('option', { value: r }, r))), h('button', { type: 'submit' }, 'Make a signed link'));
  const units = h('div');
  show(h('h1', {}, w.worker),
    h('div', { class: 'card' }, h('h2', {}, 'Block'), runs.length ? block : h('p', { class: 'muted' }, 'No open run to block them from.'), msg,
      h('h2', {}, 'Link'), runs.length ? link : null, linkOut),
    h('h2', {}, 'Runs and gold record'), sortableTable([
      { key: 'run_id', label: 'Run', render: (r) => h('a', { href: `#/run/${enc(r.run_id)}` }, r.run_id) },
      { key: 'task_name', label: 'Task' },
      { key: 'units', label: 'Units' },
      { key: 'golds_right', label: 'Golds right' },
      { key: 'golds_wrong', label: 'Golds wrong' },
      { key: 'onboarding', label: 'Onboarding' },
    ], w.runs, { noFilter: true }),
    h('h2', {}, 'Grants'), sortableTable([
      { key: 'qualification', label: 'Qualification', render: (r) => h('a', { href: `#/qual/${enc(r.qualification)}` }, r.qualification) },
      { key: 'value', label: 'Value' },
      { key: 'expires_at', label: 'Expires', render: (r) => fmtTime(r.expires_at) },
      { key: 'expired', label: 'Expired' },
    ], w.grants, { noFilter: true }),
    h('h2', {}, 'Units'), units,
    h('h2', {}, 'History'), historyTable(w.history));
  const rows = [];
  for (const r of w.runs.slice(0, 5)) {
    const page = await api.get(`/api/v1/requester/runs/${enc(r.run_id)}/units` + q({ worker: w.worker, limit: 50 }));
    rows.push(...page.items);
  }
  if (token !== pageToken) return;
  units.replaceChildren(sortableTable([
    { key: 'run_id', label: 'Run' }, { key: 'unit_id', label: 'Unit' }, { key: 'kind', label: 'Kind' },
    { key: 'status', label: 'Status' }, { key: 'check_result', label: 'Check' },
    { key: 'duration_s', label: 'Seconds', render: (r) => fmtNum(r.duration_s, 1) },
  ], rows, { noFilter: true }));
}

// ---- providers -------------------------------------------------------------------------------
async function providersPage(token) {
  const body = h('div');
  let state = '';
  let cursor = '';
  show(h('h1', {}, 'Providers'), body);
  async function draw() {
    const page = await api.get('/api/v1/requester/outbox' + q({ state, cursor, limit: 100 }));
    if (token !== pageToken) return;
    const c = page.counts;
    body.replaceChildren(
      h('div', { class: 'card stats', id: 'outbox-counts' }, ['pending', 'retrying', 'done', 'failed'].map((k) =>
        h('div', { class: 'stat' }, h('b', {}, fmtNum(c[k])), h('button', { type: 'button', onclick: () => { state = k; cursor = ''; draw(); } }, k)))),
      h('p', { class: 'muted' }, `Delivered since start: ${page.delivered_since_start}, failed: ${page.failed_since_start}`,
        state ? ' · showing ' + state : ''),
      page.rows.length === 0 ? h('p', { class: 'muted' }, 'The outbox is empty: nothing waits for a provider.') :
        sortableTable([
          { key: 'id', label: 'Id' }, { key: 'provider', label: 'Provider' }, { key: 'kind', label: 'Kind' },
          { key: 'run_id', label: 'Run' }, { key: 'state', label: 'State' }, { key: 'attempts', label: 'Attempts' },
          { key: 'last_error', label: 'Last error' },
        ], page.rows, { noFilter: false }),
      page.next_cursor ? h('button', { type: 'button', onclick: () => { cursor = page.next_cursor; draw(); } }, 'Next rows') : null);
  }
  await draw();
  poll(() => draw().catch(() => {}), 5000);
}

// ---- routing ---------------------------------------------------------------------------------
async function route() {
  clearInterval(timer);
  keyHandler = null;
  const token = ++pageToken;
  const [path, query] = (location.hash.slice(1) || '/runs').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  try {
    if (parts[0] === 'run' && parts[1]) await runPage(token, parts[1]);
    else if (parts[0] === 'review' && parts[1]) await reviewPage(token, parts[1], params);
    else if (parts[0] === 'quals') await qualsPage(token);
    else if (parts[0] === 'qual' && parts[1]) await qualPage(token, parts[1]);
    else if (parts[0] === 'worker' && parts[1]) await workerPage(token, parts[1]);
    else if (parts[0] === 'providers') await providersPage(token);
    else await runsPage(token);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return loginPage('Your session has ended; log in again.');
    if (token === pageToken) show(errorBox(e));
  }
}

document.getElementById('logout').addEventListener('click', async () => {
  try { await logout(); } catch { /* already gone */ }
  clearInterval(timer);
  loginPage('Logged out.');
});

window.addEventListener('hashchange', () => { if (!nav.hidden) route(); });

(async () => {
  if (await restoreSession()) {
    nav.hidden = false;
    route();
  } else {
    loginPage('');
  }
})();
