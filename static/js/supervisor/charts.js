// Charts drawn by the page itself, as SVG (no library, no CDN). Every chart is an image with a
// text alternative that reads the same figures (role="img", <title>, <desc>), and its figures
// are also written on it, so colour is never the only way to read it.

import { clock } from '../lib/dom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== null) el.textContent = text;
  return el;
}

let uid = 0;

/**
 * Horizontal bars, one per row, longest first as given.
 * @param {HTMLElement} container   emptied and filled with the chart
 * @param {{key: string, label: string, value: number}[]} rows
 * @param {string} title            what the chart shows (its accessible name)
 */
export function barChart(container, rows, title) {
  const id = `chart-${++uid}`;
  const barHeight = 22;
  const gap = 8;
  const labelWidth = 170;
  const plotWidth = 260;
  const valueWidth = 40;
  const height = Math.max(rows.length, 1) * (barHeight + gap) + gap;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const chart = svg('svg', {
    class: 'bar-chart', role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`,
    viewBox: `0 0 ${labelWidth + plotWidth + valueWidth} ${height}`, width: '100%',
  });
  chart.append(svg('title', { id: `${id}-title` }, title));
  const total = rows.reduce((sum, r) => sum + r.value, 0);
  const described = rows.length ? rows.map((r) => `${r.label}: ${r.value}`).join('; ') : 'none yet';
  chart.append(svg('desc', { id: `${id}-desc` }, `${total} in all. ${described}.`));
  rows.forEach((row, i) => {
    const y = gap + i * (barHeight + gap);
    const width = row.value ? Math.max(2, Math.round((row.value / max) * plotWidth)) : 0;
    const group = svg('g', { 'data-key': row.key, 'data-value': row.value, class: 'bar' });
    group.append(svg('text', { x: labelWidth - 8, y: y + barHeight * 0.7, 'text-anchor': 'end', class: 'bar-label' }, row.label));
    group.append(svg('rect', { x: labelWidth, y, width, height: barHeight, rx: 3, class: `bar-fill bar-${row.key.replace(/[^a-z_]/g, '')}` }));
    group.append(svg('text', { x: labelWidth + width + 6, y: y + barHeight * 0.7, class: 'bar-value' }, String(row.value)));
    chart.append(group);
  });
  if (!rows.length) chart.append(svg('text', { x: labelWidth, y: gap + barHeight * 0.7, class: 'bar-label' }, 'None yet'));
  container.replaceChildren(chart);
  return chart;
}

/**
 * A 7-day trend line of one timing's medians (null: no data that day, a gap in the line).
 * @param {{day: string, value: number|null}[]} points  oldest first
 * @param {string} title
 */
export function sparkline(points, title) {
  const width = 140;
  const height = 32;
  const pad = 3;
  const known = points.filter((p) => p.value !== null);
  const max = Math.max(...known.map((p) => p.value), 0.001);
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(points.length - 1, 1);
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  const chart = svg('svg', { class: 'sparkline', role: 'img', viewBox: `0 0 ${width} ${height}`, width, height });
  const words = points.map((p) => `${p.day}: ${p.value === null ? 'no data' : seconds(p.value)}`).join('; ');
  chart.append(svg('title', {}, `${title}. ${words}`));
  let segment = [];
  const flush = () => {
    if (segment.length > 1) chart.append(svg('polyline', { points: segment.join(' '), class: 'spark-line' }));
    segment = [];
  };
  points.forEach((p, i) => {
    if (p.value === null) {
      flush();
      return;
    }
    segment.push(`${x(i).toFixed(1)},${y(p.value).toFixed(1)}`);
    chart.append(svg('circle', { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 2, class: 'spark-dot' }));
  });
  flush();
  return chart;
}

/** "0.42 s", "12.3 s", "3:05" for a number of seconds; "–" for none. */
export function seconds(value) {
  if (value === null || value === undefined) return '–';
  if (value < 10) return `${value.toFixed(2)} s`;
  if (value < 60) return `${value.toFixed(1)} s`;
  return clock(value);
}
