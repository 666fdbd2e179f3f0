// Today's transfers (GET /api/stats, from the database, so every instance agrees): outcome and
// target charts, the hand-off timings with their 7-day trend, and the CSV of the same period.
// "Today" is this computer's: from its local midnight to now.

import { byId, fill, h } from '../lib/dom.js';
import { barChart, seconds, sparkline } from './charts.js';

const TIMINGS = [
  ['time_to_answer', 'Time to answer', 'from a call arriving to an agent answering'],
  ['notify_latency', 'Transfer notify latency', 'from "transfer" to Agent B being told'],
  ['consult_length', 'Consult length', 'from Agent B answering to the hand-over'],
  ['handover_gap', 'Hand-over gap', 'from Agent A leaving to Agent B with the customer'],
];
// Reloading on every floor change would re-read a day of transfers each time a call moves (about
// 130 ms of the server's time for a day of 2000 calls with its 7-day trend: bench/supervisor_reads.py):
// a busy floor re-reads at most once per this many milliseconds.
const THROTTLE_MS = 3000;
const REFRESH_MS = 60000;

export function localMidnight(now = new Date()) {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate());
}

/** An ISO 8601 moment with this computer's UTC offset, e.g. 2026-12-02T00:00:00+01:00. */
export function isoWithOffset(date) {
  const pad = (n) => String(Math.abs(Math.trunc(n))).padStart(2, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
    + `${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

export class StatsPanel {
  /** @param {import('../lib/api.js').Api} api */
  constructor(api) {
    this.api = api;
    this.timer = null;
    this.loading = null;
    this.again = false;
    this.every = null;
  }

  /** Show the figures now and keep them fresh (a supervisor is signed in). */
  start() {
    this.stop();
    this.every = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresh();
  }

  stop() {
    clearInterval(this.every);
    clearTimeout(this.timer);
    this.every = null;
    this.timer = null;
  }

  /** Something changed on the floor: read the figures again soon (once for every change within
   * THROTTLE_MS of the first). */
  changed() {
    if (this.timer || !this.every) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, THROTTLE_MS);
  }

  async refresh() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this._load().finally(() => {
      this.loading = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
    return this.loading;
  }

  async _load() {
    const now = new Date();
    const query = new URLSearchParams({ from: isoWithOffset(localMidnight(now)), to: isoWithOffset(now) });
    byId('stats-csv').href = `/api/stats.csv?${query}`;
    let stats;
    try {
      stats = await this.api.get(`/api/stats?${query}`);
    } catch (err) {
      byId('stats-status').textContent = `The figures could not be loaded: ${err.message}`;
      return;
    }
    const total = stats.transfers.total;
    byId('stats-status').textContent = `${total} ${total === 1 ? 'transfer' : 'transfers'} today, as of ${now.toLocaleTimeString()}.`;
    this.render(stats);
  }

  render(stats) {
    barChart(byId('outcome-chart'),
      stats.transfers.by_outcome.map((o) => ({ key: o.outcome, label: o.label, value: o.count })),
      "Today's transfers by outcome");
    barChart(byId('target-chart'),
      stats.transfers.by_target.slice(0, 10).map((t) => ({ key: t.kind, label: t.label, value: t.count })),
      "Today's transfers by target (the ten most frequent)");
    fill(byId('timings-rows'), TIMINGS.map(([key, label, what]) => {
      const today = stats.timings[key];
      const points = stats.trend.map((day) => ({
        day: new Date(day.day_start).toLocaleDateString([], { weekday: 'short', day: 'numeric' }),
        value: day[key].p50_s,
      }));
      return h('tr', { dataset: { timing: key } },
        h('th', { scope: 'row' }, label, h('span', { class: 'visually-hidden' }, `, ${what}`)),
        h('td', {}, String(today.count)),
        h('td', {}, seconds(today.p50_s)),
        h('td', {}, seconds(today.p95_s)),
        h('td', {}, sparkline(points, `${label}, median per day, the last 7 days`)));
    }));
  }
}
