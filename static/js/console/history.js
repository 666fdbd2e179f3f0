// "Recent calls": the agent's finished calls (GET /api/calls?mine=1&status=ended), a page at a
// time with the server's next_before, and one call's record opened from the list: its transfers
// with their outcomes, context, summary versions and timeline (GET /api/calls/<id> and
// /api/calls/<id>/summary), and its recording when the call has one: phone calls are recorded
// with RECORDING_ENABLED (web calls never are), and the audio comes from the app
// (GET /api/calls/<id>/recording, which streams it from Twilio), loaded only when played. The
// server decides which calls an agent may read: those they took part in.

import { fill, h, show, timeOfDay } from '../lib/dom.js';
import { TRANSFER_STATUS_LABEL } from '../lib/protocol.js';
import { endedReasonText, outcomeWord } from './messages.js';
import { renderEntries } from './render.js';

export const PAGE_SIZE = 10;

const CHANNEL = { web: 'Web', phone: 'Phone' };

/** "12 Mar, 14:03" for a list line (today's calls by time alone). */
export function when(iso, now = new Date()) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? timeOfDay(iso) : `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })}, ${timeOfDay(iso)}`;
}

/** One line of the list: customer, channel, and how the call ended. */
export function callLine(call) {
  const channel = CHANNEL[call.channel] ?? call.channel;
  return `${call.customer_name} · ${channel} · ${endedReasonText(call.end_reason)}`;
}

/** "you joined" reads "You joined" at the start of a line. */
const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** A transfer of the opened call, with its outcome. */
export function transferLine(t, nameOf) {
  const target = t.to_agent_id ? nameOf(t.to_agent_id) : t.to_team ? `team ${t.to_team}` : t.to_phone;
  const label = TRANSFER_STATUS_LABEL[t.status] ?? t.status;
  const reason = t.reason ? ` ${t.reason}` : '';
  return sentence(`${nameOf(t.from_agent_id)} → ${target}: ${label}.${reason}`);
}

/** "2:05" for a duration in seconds. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * What the record shows of the call's audio: `src` to play (a completed recording only, always
 * the app's own URL) and words about it.
 */
export function recordingView(call) {
  const r = call.recording;
  if (!r) return { src: null, text: call.channel === 'web' ? 'Web calls are not recorded.' : 'This call was not recorded.' };
  if (r.status === 'completed') {
    const sides = r.channels === 2 ? ' · caller and agents on separate channels' : '';
    return { src: `/api/calls/${encodeURIComponent(call.session_id)}/recording`, text: `${duration(r.duration_s)}${sides}` };
  }
  if (r.status === 'in-progress') return { src: null, text: 'The recording is still being processed; open the call again shortly.' };
  return { src: null, text: 'No recording was made (the call was too short or silent).' };
}

// A supervisor's mode, inside "Sue started …" (app.services.supervision).
const SUPERVISION_WORDS = Object.freeze({ monitor: 'monitoring', whisper: 'whispering to the agent', barge: 'taking part (barge-in)' });

/** One timeline event in words. */
export function timelineText(e, nameOf) {
  return sentence(eventWords(e, nameOf));
}

function eventWords(e, nameOf) {
  const p = e.payload ?? {};
  switch (e.type) {
    case 'call_assigned': return `Call from ${p.customer_name ?? 'the customer'} assigned`;
    case 'call_queued': return 'Waiting in the queue';
    case 'call_active': return `${nameOf(p.agent_id)} joined`;
    case 'call_missed': return `Missed: ${p.reason ?? ''}`.trim();
    case 'agent_left': return `${nameOf(p.agent_id)} left`;
    case 'context_added': return 'Context added';
    case 'summary_ready': return 'Summary prepared';
    case 'transfer_requested': return `Transfer requested by ${nameOf(p.from_agent_id)}`;
    case 'transfer_ringing': return 'Transfer ringing';
    case 'transfer_accepted': return 'Transfer accepted';
    case 'transfer_completed': return `Transfer completed to ${p.to_agent_id ? nameOf(p.to_agent_id) : p.to_phone}`;
    case 'transfer_bridged': return 'Agent B reached the customer';
    case 'transfer_declined':
    case 'transfer_cancelled':
    case 'transfer_failed': return `Transfer ${outcomeWord(p.outcome)}${p.reason ? `: ${p.reason}` : ''}`;
    case 'customer_presence': return p.present ? 'Customer reconnected' : 'Customer connection dropped';
    case 'supervision_started': return `${nameOf(p.supervisor_id)} started ${SUPERVISION_WORDS[p.mode] ?? 'supervising'}`;
    case 'supervision_ended': return `${nameOf(p.supervisor_id)} stopped ${SUPERVISION_WORDS[p.mode] ?? 'supervising'}`;
    case 'call_ended': return `Call ended (${endedReasonText(p.reason)})`;
    default: return e.type.replaceAll('_', ' ');
  }
}

export class CallHistory {
  /**
   * @param {object} deps
   * @param {import('../lib/api.js').Api} deps.api
   * @param {(id: string) => string} deps.nameOf  an agent's display name
   * @param {(id: string) => HTMLElement} deps.byId
   */
  constructor({ api, nameOf, byId }) {
    this.api = api;
    this.nameOf = nameOf;
    this.el = {
      list: byId('history-list'), more: byId('history-more'), message: byId('history-message'),
      detail: byId('history-detail'), heading: byId('history-detail-heading'), facts: byId('history-facts'),
      transfers: byId('history-transfers'), context: byId('history-context'), summaries: byId('history-summaries'),
      timeline: byId('history-timeline'), close: byId('history-close'), refresh: byId('history-refresh'),
      recording: byId('history-recording'),
    };
    this.calls = [];
    this.before = null;
    this.loading = null;
    this.el.more.addEventListener('click', () => this.load());
    this.el.refresh.addEventListener('click', () => this.refresh());
    this.el.close.addEventListener('click', () => this.close());
  }

  /** From the newest again (after sign-in, and when one of our calls ends). */
  refresh() {
    this.calls = [];
    this.before = null;
    return this.load();
  }

  /** The next page; one load at a time (a second click waits for the first). */
  load() {
    this.loading ??= this._load().finally(() => { this.loading = null; });
    return this.loading;
  }

  async _load() {
    const query = new URLSearchParams({ mine: '1', status: 'ended', limit: String(PAGE_SIZE) });
    if (this.before) query.set('before', this.before);
    try {
      const page = await this.api.get(`/api/calls?${query}`);
      this.calls.push(...page.calls);
      this.before = page.next_before;
      this.el.message.textContent = '';
    } catch (err) {
      this.el.message.textContent = `Recent calls could not be loaded: ${err.message}`;
    }
    this.renderList();
  }

  renderList() {
    const items = this.calls.map((c) => h('li', { dataset: { sessionId: c.session_id } },
      h('p', { class: 'entry-meta' }, h('time', { datetime: c.ended_at ?? c.created_at }, when(c.ended_at ?? c.created_at))),
      h('p', { class: 'entry-text' }, callLine(c), ' ',
        h('button', { type: 'button', class: 'button button-secondary', onclick: () => this.open(c.session_id),
          'aria-label': `Open the call with ${c.customer_name}` }, 'Open'))));
    if (!items.length) items.push(h('li', { class: 'muted' }, 'No finished calls yet.'));
    fill(this.el.list, items);
    show(this.el.more, Boolean(this.before));
  }

  async open(sessionId) {
    let call;
    let versions;
    try {
      [{ call }, { history: versions }] = await Promise.all([
        this.api.get(`/api/calls/${encodeURIComponent(sessionId)}`),
        this.api.get(`/api/calls/${encodeURIComponent(sessionId)}/summary`),
      ]);
    } catch (err) {
      this.el.message.textContent = `That call could not be opened: ${err.message}`;
      return;
    }
    const nameOf = this.nameOf;
    this.el.heading.textContent = `Call with ${call.customer_name}`;
    this.el.detail.dataset.sessionId = call.session_id;
    fill(this.el.facts,
      h('div', {}, h('dt', {}, 'Channel'), h('dd', {}, CHANNEL[call.channel] ?? call.channel)),
      h('div', {}, h('dt', {}, 'Started'), h('dd', {}, when(call.created_at))),
      h('div', {}, h('dt', {}, 'Ended'), h('dd', {}, `${when(call.ended_at)} (${endedReasonText(call.end_reason)})`)),
      h('div', {}, h('dt', {}, 'Last agent'), h('dd', {}, call.agent_id ? nameOf(call.agent_id) : '—')));
    const audio = recordingView(call);
    fill(this.el.recording, audio.src
      ? [h('audio', { controls: true, preload: 'none', src: audio.src, 'aria-label': `Recording of the call with ${call.customer_name}` }),
        h('p', { class: 'muted' }, audio.text)]
      : h('p', { class: 'muted' }, audio.text));
    const transfers = call.transfers.map((t) => h('li', { dataset: { status: t.status } }, transferLine(t, nameOf)));
    fill(this.el.transfers, transfers.length ? transfers : h('li', { class: 'muted' }, 'No transfers.'));
    renderEntries(this.el.context, call.context, nameOf);
    const summaries = versions.map((v) => h('li', {},
      h('p', { class: 'entry-meta' }, h('time', { datetime: v.created_at ?? '' }, timeOfDay(v.created_at)), ' · ',
        v.edited_by ? `edited by ${nameOf(v.edited_by)}` : `${v.kind} · ${v.provider}`),
      h('p', { class: 'entry-text' }, v.text)));
    fill(this.el.summaries, summaries.length ? summaries : h('li', { class: 'muted' }, 'No summary was made.'));
    fill(this.el.timeline, call.timeline.map((e) => h('li', { dataset: { type: e.type } },
      h('time', { datetime: e.created_at }, timeOfDay(e.created_at)), ' ', timelineText(e, nameOf))));
    show(this.el.detail);
    this.el.heading.focus();
  }

  close() {
    const player = this.el.recording.querySelector('audio');
    if (player) player.pause();
    fill(this.el.recording);  // drops the player: nothing keeps streaming once the record is closed
    show(this.el.detail, false);
    delete this.el.detail.dataset.sessionId;
  }
}
