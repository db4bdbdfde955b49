// Tiny DOM helpers: every text goes through textContent, never innerHTML, so no submission, worker
// name or reason is ever parsed as HTML in the dashboard.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtPct(x) {
  return x === null || x === undefined ? '–' : (100 * x).toFixed(0) + '%';
}

export function fmtTime(t) {
  if (!t) return '–';
  return t.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// A table whose columns sort on click (client side, over the rows shown) and whose rows a text
// filter narrows. columns: [{key, label, render?, num?}]
export function sortableTable(columns, rows, opts = {}) {
  let sortKey = opts.sortKey || null;
  let asc = true;
  let filter = '';
  const tbody = h('tbody');
  const wrap = h('div', { class: 'table-wrap' });
  const input = h('input', { type: 'search', placeholder: opts.filterPlaceholder || 'Filter…', 'aria-label': 'Filter rows',
    oninput: (e) => { filter = e.target.value.toLowerCase(); draw(); } });
  const head = h('tr', {}, columns.map((c) => h('th', {}, h('button', { type: 'button', onclick: () => {
    if (sortKey === c.key) asc = !asc; else { sortKey = c.key; asc = true; }
    draw();
  } }, c.label))));
  const table = h('table', { 'data-testid': opts.testid || null }, h('thead', {}, head), tbody);
  function draw() {
    let shown = rows.filter((r) => !filter || columns.some((c) => String(r[c.key] ?? '').toLowerCase().includes(filter)));
    if (sortKey) {
      shown = shown.slice().sort((a, b) => {
        const x = a[sortKey], y = b[sortKey];
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * (asc ? 1 : -1);
      });
    }
    tbody.replaceChildren(...shown.map((r) => h('tr', {}, columns.map((c) => h('td', {}, c.render ? c.render(r) : (r[c.key] ?? '–'))))));
  }
  draw();
  wrap.append(table);
  return h('div', {}, opts.noFilter ? null : h('div', { class: 'row' }, input), wrap);
}
