// Rendering: the console's panels drawn from the state (and the audio line from the room's
// status). Nothing here changes the state or talks to the server.

import { Ticker, byId, setDisabled, show, timeOfDay } from '../lib/dom.js';
import { audioText, callHeading, feedText, idleText } from './messages.js';
import { renderAgentOptions, renderEntries, renderSummary, renderTeamOptions, transferStatus, transferTarget } from './render.js';
import { nameOf, teamName } from './state.js';

/** Which transfer target the form is set to: "team" (the default while there are teams, until
 * Agent A picks another kind for this call), "agent" or "phone"; the matching box is shown. */
export function showTargetKind(teams) {
  const form = byId('transfer-form');
  const radios = [...document.querySelectorAll('input[name="target-kind"]')];
  const pick = (kind) => { for (const r of radios) r.checked = r.value === kind; };
  show(byId('target-team-option'), teams.length > 0);
  const checked = radios.find((r) => r.checked)?.value ?? 'agent';
  if (!teams.length && checked === 'team') pick('agent');
  else if (teams.length && form.dataset.kindChosen !== 'yes') pick('team');
  const kind = radios.find((r) => r.checked)?.value ?? 'agent';
  show(byId('target-team-box'), kind === 'team');
  show(byId('target-agent-box'), kind === 'agent');
  show(byId('target-phone-box'), kind === 'phone');
  show(byId('refresh-agents'), kind !== 'phone'); // refreshes the teams' and agents' availability
  return kind;
}

/** When the call timer of an ongoing call starts, and what it is labelled. */
export function callClock(phase, call, transfer, meId) {
  if (phase === 'briefing-in') return [transfer.answered_at, 'Briefing time'];
  let since = call.answered_at ?? call.assigned_at;
  if (phase === 'with-customer' && call.agent_id === meId) {
    // Handed over to us: count from when we reached the customer (LiveKit saw us in their
    // room), or from the hand-over itself when that is not known (no webhooks).
    const mine = call.transfers.filter((t) => t.to_agent_id === meId && (t.bridged_at || t.handed_over_at));
    const last = mine[mine.length - 1];
    if (last) since = last.bridged_at ?? last.handed_over_at;
  }
  return [since, 'Call time'];
}

export class Screen {
  /**
   * @param {object} deps
   * @param {'agent'|'agent-b'} deps.mode   which page this is
   * @param {import('../lib/audio.js').CallAudio} deps.audio  read only
   * @param {() => {retrying: boolean, reason: string|null}} deps.roomStatus
   */
  constructor({ mode, audio, roomStatus }) {
    Object.assign(this, { mode, audio, roomStatus });
    this.callTicker = new Ticker(byId('call-timer'));
    this.incomingTicker = new Ticker(byId('incoming-waiting'));
  }

  showLogin(message) {
    show(byId('console-view'), false);
    show(byId('agent-bar'), false);
    show(byId('login-view'));
    const error = byId('login-error');
    error.textContent = message ?? '';
    show(error, Boolean(message));
    byId('login-agent').focus();
  }

  showConsole() {
    show(byId('login-view'), false);
    show(byId('console-view'));
    show(byId('agent-bar'));
  }

  render(state) {
    const inCall = state.view.phase !== 'idle';
    const incoming = Boolean(state.incoming) && !inCall;
    show(byId('incoming-transfer'), incoming);
    if (incoming) this.renderIncoming(state);
    else this.incomingTicker.stop();
    show(byId('idle-view'), !inCall && !incoming);
    byId('idle-text').textContent = idleText(this.mode, state.me?.presence);
    show(byId('call-view'), inCall);
    if (inCall) this.renderCall(state);
    else this.callTicker.stop();
    if (state.me) {
      byId('agent-name').textContent = `${state.me.name ?? state.me.id} (${state.me.id})`;
      for (const radio of document.querySelectorAll('input[name="presence"]')) radio.checked = radio.value === state.me.presence;
    }
    this.renderAudio(state);
  }

  renderIncoming(state) {
    const inc = state.incoming;
    byId('incoming-caller').textContent = inc.customer_name;
    byId('incoming-from').textContent = inc.from_agent_name ?? nameOf(state, inc.from_agent_id);
    show(byId('incoming-team-row'), Boolean(inc.to_team));
    byId('incoming-team').textContent = inc.to_team ? `Team ${inc.team_name ?? teamName(state, inc.to_team)} (the first member to accept takes it)` : '';
    renderSummary(byId('incoming-summary'), inc.summary, 'No summary was attached.');
    byId('incoming-transfer').dataset.transferId = inc.transfer_id;
    this.incomingTicker.run(inc.requested_at);
  }

  renderCall(state) {
    const { call, me } = state;
    const { phase, transfer } = state.view;
    const name = (id) => nameOf(state, id);
    const other = !transfer ? '' : phase === 'transfer-out' ? transferTarget(transfer, name, (id) => teamName(state, id)) : name(transfer.from_agent_id);
    const heading = byId('call-heading');
    heading.dataset.phase = phase;
    const [title, sub] = callHeading(phase, transfer, other);
    heading.textContent = title;
    byId('call-subheading').textContent = sub;
    byId('call-customer').textContent = `${call.customer_name}${call.caller_number ? ` · ${call.caller_number}` : ''} · ${call.channel === 'phone' ? 'phone' : 'web'}`;

    const [since, label] = callClock(phase, call, transfer, me.id);
    byId('call-timer-label').textContent = label;
    this.callTicker.run(since);

    const away = state.customerAway?.session_id === call.session_id ? state.customerAway : null;
    show(byId('customer-presence'), Boolean(away));
    if (away) {
      const grace = away.grace_s ? ` for up to ${away.grace_s} s` : '';
      byId('customer-presence-text').textContent = `${call.customer_name}'s connection dropped at ${timeOfDay(away.since)}. The call stays open${grace} while they reconnect; it ends if they do not.`;
    }

    const owner = phase === 'with-customer' || phase === 'transfer-out';
    show(byId('level-box'), phase === 'with-customer');
    show(byId('mute'), phase !== 'handed-off');
    show(byId('bow-out'), phase === 'briefing-in');
    show(byId('leave-call'), phase === 'handed-off');
    show(byId('end-call'), phase === 'with-customer');
    if (phase !== 'with-customer') show(byId('end-confirm'), false);

    this.renderContext(state);
    setDisabled(byId('context-add'), phase === 'handed-off');
    renderSummary(byId('summary-card'), transfer?.summary ?? call.summary);
    show(byId('summary-edit'), owner);

    show(byId('transfer-panel'), owner || phase === 'handed-off');
    show(byId('transfer-form'), phase === 'with-customer');
    const mine = call.transfers.filter((t) => t.from_agent_id === me.id);
    const [status, text] = transferStatus(mine[mine.length - 1] ?? null, name, (id) => teamName(state, id));
    if (phase === 'with-customer') this.renderTeams(state);
    const statusEl = byId('transfer-status');
    statusEl.dataset.status = status;
    statusEl.textContent = text;
    show(byId('complete-transfer'), phase === 'transfer-out');
    setDisabled(byId('complete-transfer'), transfer?.status !== 'briefing');
    show(byId('cancel-transfer'), phase === 'transfer-out');
  }

  renderContext(state) {
    renderEntries(byId('context-list'), state.entries.values(), (id) => nameOf(state, id));
  }

  renderAgents(state) {
    renderAgentOptions(byId('transfer-agent'), state.agents, state.me?.id);
    this.renderTeams(state);
  }

  /** The team list, with the current summary's suggested team preselected. */
  renderTeams(state) {
    const suggested = state.call?.summary?.structured?.suggested_team ?? null;
    renderTeamOptions(byId('transfer-team'), state.teams, suggested);
    showTargetKind(state.teams);
  }

  renderFeed(mode) {
    const el = byId('feed-status');
    el.dataset.mode = mode;
    el.textContent = feedText(mode);
  }

  renderAudio(state) {
    const a = this.audio;
    const retry = this.roomStatus();
    const who = { customer: (p) => `${p.name} (customer)`, hold: () => 'hold music', supervisor: (p) => `${p.name} (supervisor)` };
    const people = a.remotes().map((p) => who[p.role]?.(p) ?? p.name);
    const el = byId('audio-status');
    el.dataset.state = a.state;
    el.textContent = audioText({ state: a.state, roomName: a.roomName, people }, retry.retrying, Boolean(state.view.room));
    const problem = a.problem ?? (retry.reason ? { message: `The call service could not be reached (${retry.reason}). Retrying.` } : null);
    show(byId('audio-problem'), Boolean(problem) && !a.connected && Boolean(state.view.room));
    byId('audio-problem-text').textContent = problem?.message ?? '';
    show(byId('mic-problem'), Boolean(a.micProblem));
    byId('mic-problem-text').textContent = a.micProblem?.message ?? '';
    show(byId('enable-audio-box'), a.connected && !a.canPlay);
    const mute = byId('mute');
    mute.setAttribute('aria-pressed', String(a.muted));
    mute.textContent = a.muted ? 'Unmute' : 'Mute';
    setDisabled(mute, !a.connected);
  }
}
