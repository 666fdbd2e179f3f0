// The floor's tables: the queue, live calls and agents, from one floor view (GET
// /api/supervisor/floor, or pushed by its stream). Times in state tick here every second, from
// the moments the view gives, corrected for this computer's clock (the view's server_time).

import { byId, clock, fill, h, show } from '../lib/dom.js';

const CHANNEL = { web: 'Web', phone: 'Phone' };
const PRESENCE = { available: 'Available', away: 'Away', offline: 'Offline' };
// Each button's purpose is described by a hidden paragraph of the page (help-<mode>).
const MODES = [['monitor', 'Listen'], ['whisper', 'Whisper'], ['barge', 'Join']];

export class FloorView {
  /**
   * @param {object} deps
   * @param {() => string|null} deps.me         the signed-in supervisor's agent id
   * @param {() => {sessionId: string, mode: string}|null} deps.active  the supervision under way
   * @param {(call: object, mode: string) => void} deps.onCoach
   */
  constructor({ me, active, onCoach }) {
    Object.assign(this, { me, active, onCoach });
    this.offsetMs = 0;
    this.view = null;
    this.timer = setInterval(() => this._tick(), 1000);
  }

  render(view) {
    this.view = view;
    this.offsetMs = new Date(view.server_time).getTime() - Date.now();
    this._queue(view.queue);
    this._calls(view.calls);
    this._agents(view.agents, view.calls);
    this._tick();
  }

  /** Seconds from an ISO moment to now on the server's clock. */
  _since(iso) {
    return (Date.now() + this.offsetMs - new Date(iso).getTime()) / 1000;
  }

  _tick() {
    for (const el of document.querySelectorAll('.floor [data-since]')) {
      el.textContent = clock(this._since(el.dataset.since));
    }
  }

  _queue(queue) {
    byId('queue-count').textContent = String(queue.waiting.length);
    byId('queue-missed').textContent = String(queue.missed);
    const longest = byId('queue-longest');
    if (queue.longest_wait_since) longest.dataset.since = queue.longest_wait_since;
    else {
      delete longest.dataset.since;
      longest.textContent = '–';
    }
    fill(byId('queue-rows'), queue.waiting.map((w) => h('tr', { dataset: { session: w.session_id } },
      h('td', {}, w.customer_name),
      h('td', {}, CHANNEL[w.channel] ?? w.channel),
      h('td', {}, h('span', { class: 'timer', dataset: { since: w.waiting_since } }, '')),
      h('td', {}, w.requeued ? 'Missed an agent; waiting again' : ''))));
    show(byId('queue-table'), queue.waiting.length > 0);
    show(byId('queue-empty'), queue.waiting.length === 0);
  }

  /** The supervision started or stopped: show which button is on. */
  refreshCoach() {
    if (this.view) this._calls(this.view.calls);
  }

  _calls(calls) {
    // The rows are rebuilt: a keyboard user on one of their buttons keeps their place.
    const focused = document.activeElement?.closest?.('#calls-rows button');
    const keep = focused ? { session: focused.closest('tr').dataset.session, mode: focused.dataset.mode } : null;
    fill(byId('calls-rows'), calls.map((c) => h('tr', { dataset: { session: c.session_id, state: c.state } },
      h('td', {}, c.customer_name),
      h('td', {}, CHANNEL[c.channel] ?? c.channel),
      h('td', {}, c.agent_name ?? '–', c.agent_on_phone ? ' (phone)' : ''),
      h('td', { class: 'call-state' }, stateText(c)),
      h('td', {}, h('span', { class: 'timer', dataset: { since: c.state_since } }, '')),
      h('td', {}, this._coachButtons(c)))));
    show(byId('calls-table'), calls.length > 0);
    show(byId('calls-empty'), calls.length === 0);
    if (keep) {
      const again = [...byId('calls-rows').querySelectorAll('tr')].find((tr) => tr.dataset.session === keep.session)
        ?.querySelector(`button[data-mode="${keep.mode}"]`);
      again?.focus();
    }
  }

  _coachButtons(call) {
    if (call.agent_id && call.agent_id === this.me()) return h('span', { class: 'muted' }, 'Your call');
    const active = this.active();
    const buttons = MODES.filter(([mode]) => call.coach[mode]).map(([mode, label]) => h('button', {
      type: 'button', class: 'button button-small', dataset: { mode },
      'aria-label': `${label}: ${call.customer_name} with ${call.agent_name ?? 'no agent'}`,
      'aria-describedby': `help-${mode}`,
      'aria-pressed': active?.sessionId === call.session_id && active.mode === mode ? 'true' : 'false',
      onclick: () => this.onCoach(call, mode),
    }, label));
    if (!buttons.length) return h('span', { class: 'muted' }, call.state === 'ringing' ? 'Not answered yet' : '');
    return h('span', { class: 'button-row coach' }, buttons, call.coach.note ? h('span', { class: 'muted' }, call.coach.note) : null);
  }

  _agents(agents, calls) {
    const customer = new Map(calls.map((c) => [c.session_id, c.customer_name]));
    fill(byId('agents-rows'), agents.map((a) => h('tr', { dataset: { agent: a.agent_id, presence: a.presence } },
      h('th', { scope: 'row' }, a.name, a.role === 'supervisor' ? [' ', h('span', { class: 'badge' }, 'supervisor')] : null),
      h('td', {}, PRESENCE[a.presence] ?? a.presence),
      h('td', {}, a.current_call ? (customer.get(a.current_call) ?? 'On a call') : '–'),
      h('td', {}, String(a.calls_today)),
      h('td', {}, String(a.transfers_out_today)),
      h('td', {}, String(a.transfers_in_today)))));
  }
}

function stateText(call) {
  const consult = call.consult;
  if (call.state === 'on_hold' && consult) return `On hold: calling ${consult.with}`;
  if (call.state === 'consult' && consult) return `Consult with ${consult.with}`;
  if (call.state === 'transferred') return 'Transferred';
  return call.state_label;
}
