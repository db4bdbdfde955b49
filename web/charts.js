// Plots: uPlot (pinned, from npm; embedded under vendor/) for time series, plain elements for the
// histogram. Without uPlot (a build without `scripts/setup.sh`), a short text says so instead.
import { h } from './dom.js';

export function throughputChart(points, bucketS, width, label = 'submitted') {
  const box = h('div', { class: 'chart' });
  const uPlot = window.uPlot;
  if (!uPlot) {
    box.append(h('p', { class: 'muted' }, `${points.reduce((s, p) => s + p.submitted, 0)} ${label} (charts need web/vendor: run scripts/setup.sh)`));
    return box;
  }
  if (points.length === 0) {
    box.append(h('p', { class: 'muted' }, 'Nothing yet.'));
    return box;
  }
  // Fill empty buckets with zeros so a pause shows as a dip, not a straight line.
  const xs = [];
  const ys = [];
  let t = points[0].t;
  const byT = new Map(points.map((p) => [p.t, p.submitted]));
  const last = points[points.length - 1].t;
  while (t <= last && xs.length < 5000) {
    xs.push(t);
    ys.push(byT.get(t) || 0);
    t += bucketS;
  }
  // One bucket alone would stretch the time axis over years: show its neighbours as zeros.
  if (xs.length < 3) {
    xs.unshift(xs[0] - bucketS);
    ys.unshift(0);
    xs.push(xs[xs.length - 1] + bucketS);
    ys.push(0);
  }
  const w = Math.max(240, Math.min(width, (document.getElementById('main').clientWidth || width) - 40));
  // uPlot measures its container: create it once attached.
  requestAnimationFrame(() => {
    const opts = { width: w, height: 180, legend: { show: false }, scales: { x: { time: true } },
      series: [{}, { label, stroke: '#2456d3', fill: 'rgba(36,86,211,0.12)', width: 2 }],
      axes: [{}, { size: 56 }] };
    new uPlot(opts, [xs, ys], box);
  });
  return box;
}

export function histogram(values, bins) {
  if (values.length === 0) return h('p', { class: 'muted' }, 'No gold answered yet.');
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(v * bins))]++;
  const max = Math.max(...counts);
  const bars = h('div', { class: 'hist', role: 'img', 'aria-label': 'Gold accuracy histogram' });
  const labels = h('div', { class: 'hist-labels' });
  counts.forEach((n, i) => {
    const bar = h('div', { title: `${i * 100 / bins}–${(i + 1) * 100 / bins}%: ${n} workers` });
    bar.style.height = (100 * n / max) + '%';
    bars.append(bar);
    labels.append(h('span', {}, `${i * 100 / bins}`));
  });
  return h('div', {}, bars, labels, h('p', { class: 'muted' }, `${values.length} workers with golds; accuracy in %`));
}
