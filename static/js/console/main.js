// The agent console (/agent) and the Agent B dashboard (/agent-b): one controller, two layouts.
// Any agent can be Agent A on one call and Agent B on the next, so both pages handle incoming
// calls, outgoing transfers and incoming transfers.
//
// The server is the source of truth. `reconcile()` loads it (/api/me with the transfers ringing
// for us, then the active call), derives the phase and the room this agent belongs in, and gets
// the browser there. Events (SSE, or polling when SSE fails, both starting from the /api/me
// answer's last_event_id) update the screen at once and then trigger a reconcile, so a refresh,
// a missed event or a reconnect always converge on the same state.

import { Api, ApiError } from '../lib/api.js';
import { CallAudio, LevelMeter } from '../lib/audio.js';
import { chime } from '../lib/chime.js';
import { Ticker, byId, fill, setDisabled, show, timeOfDay } from '../lib/dom.js';
import { EventFeed } from '../lib/feed.js';
import { Actions } from './actions.js';
import { derivePhase } from './phase.js';
import { noticeItem, renderEntries, renderSummary, transferStatus } from './render.js';

/** The web customer's connection as the call's timeline last reported it (customer_presence
 * events): null while they are there, {session_id, since, grace_s} while they are gone. */
function customerAwayFrom(call) {
  let last = null;
  for (const e of call?.timeline ?? []) if (e.type === 'customer_presence') last = e;
  if (!last || last.payload.present) return null;
  return { session_id: call.session_id, since: last.created_at, grace_s: last.payload.grace_s };
}

const MODE = document.body.dataset.mode === 'agent-b' ? 'agent-b' : 'agent';
const MAX_NOTICES = 12;
const ALERT_FADE_MS = 15000;
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
const ENDED_REASON = {
  customer_hung_up: 'the customer hung up',
  agent_ended: 'ended by the agent',
  customer_left: 'the customer did not reconnect in time',
  room_finished: 'the call room closed',
  agent_b_hung_up: 'the agent hung up',
};
const SESSION_ENDED = {
  logged_out: 'You were signed out (in another tab or window). Sign in again.',
  expired: 'Your session expired. Sign in again.',
  unauthorized: 'Your session has ended. Sign in again.',
};
/** What became of the call once the server heard our microphone failed (/api/microphone-failed
 * answers the outcome, and the call's status after it). */
function afterMicrophoneFailed(res) {
  if (res.outcome === 'declined') return 'The transfer has been declined';
  if (res.outcome === 'left') return 'You have left the call';
  // requeued (or handed over to a briefed Agent B): queued means nobody else was free.
  return res.status === 'queued' ? 'The caller is on hold until another agent is free' : 'The call has been passed to another agent';
}
const OUTCOME_WORD = { declined: 'declined', cancelled: 'cancelled', no_answer: 'not answered', busy: 'busy', failed: 'failed', caller_left: 'ended: the caller hung up', agent_a_left: 'ended: Agent A left' };

class Console {
  constructor() {
    this.api = new Api({ csrf: () => this.csrf });
    this.csrf = null;
    this.me = null;
    this.call = null;
    this.view = derivePhase(null, null);
    this.incoming = null;
    this.customerAway = null; // {session_id, since, grace_s} while a web customer is reconnecting
    this.signingOut = false;
    this.entries = new Map();
    this.agents = [];
    this.feed = null;
    this.pendingGrant = null;
    this.eventSeq = 0;
    this.reconciling = null;
    this.again = false;
    this.roomRetry = { attempt: 0, timer: null, room: null, reason: null };
    this.tokenRefusals = 0;
    this.micReportedFor = null; // the call whose microphone failure was reported (once per call)
    this.audio = new CallAudio(byId('remote-audio'));
    this.meter = new LevelMeter(byId('customer-level'), this.audio, 'customer');
    this.callTicker = new Ticker(byId('call-timer'));
    this.incomingTicker = new Ticker(byId('incoming-waiting'));
    this.actions = new Actions(this);
    this.audio.addEventListener('change', () => this.renderAudio());
    this.audio.addEventListener('disconnected', () => this.reconcile());
    this.audio.addEventListener('microphonefailed', (e) => this.microphoneFailed(e.detail));
    byId('audio-retry').addEventListener('click', () => this.retryRoomNow());
    byId('mic-retry').addEventListener('click', () => this.audio.retryMicrophone());
    byId('mute').addEventListener('click', () => this.audio.setMuted(!this.audio.muted));
    byId('enable-audio').addEventListener('click', () => {
      Promise.all([this.audio.startAudio(), this.meter.resume()])
        .catch((err) => this.alert(`The browser did not start the call audio: ${err.message ?? err}`, { sticky: true }));
    });
    byId('alert-dismiss').addEventListener('click', () => show(byId('alert'), false));
    byId('page-error-retry').addEventListener('click', () => { show(byId('page-error'), false); this.retry?.(); });
  }

  // -- session ------------------------------------------------------------------------------
  /** Load who we are and where to start from; `loginMessage` is shown if nobody is signed in. */
  async init(loginMessage) {
    let me;
    try {
      me = await this.api.get('/api/me');
    } catch (err) {
      if (err.status === 401) this.showLogin(loginMessage);
      else this.pageError(`The server could not be reached: ${err.message}`, () => this.init(loginMessage));
      return;
    }
    await this.signedIn(me);
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

  /** Build the screen from an /api/me answer: a ringing transfer shows at once, and events
   * are taken from its last_event_id on (nothing older is replayed). */
  signedIn(me) {
    this.me = { ...this.me, ...me.agent };
    this.csrf = me.csrf_token;
    this.incoming = me.pending_transfers[0] ?? null;
    show(byId('login-view'), false);
    show(byId('console-view'));
    show(byId('agent-bar'));
    this.startFeed(me.last_event_id);
    this.actions.guard(() => this.actions.loadAgents());
    this.render();
    return this.reconcile();
  }

  startFeed(since) {
    this.feed?.stop();
    this.feed = new EventFeed({
      api: this.api,
      agentId: this.me.id,
      since,
      onEvent: (type, data) => this.onEvent(type, data),
      onSynced: () => this.reconcile(),
      onMode: (mode) => this.renderFeed(mode),
      onAuthLost: (reason) => {
        // Our own "Sign out" ends the session too; it says so itself.
        if (!this.signingOut) this.signedOut(SESSION_ENDED[reason] ?? SESSION_ENDED.unauthorized);
      },
    });
    this.renderFeed('connecting');
    this.feed.start();
  }

  async signedOut(message) {
    this.feed?.stop();
    this.feed = null;
    this.me = null;
    this.csrf = null;
    this.call = null;
    this.incoming = null;
    this.customerAway = null;
    this.view = derivePhase(null, null);
    await this.audio.leave();
    this.render();
    this.showLogin(message);
  }

  nameOf(agentId) {
    if (!agentId) return 'unknown agent';
    if (this.me && agentId === this.me.id) return 'you';
    return this.agents.find((a) => a.id === agentId)?.name ?? agentId;
  }

  // -- the server's state -------------------------------------------------------------------
  reconcile() {
    if (this.reconciling) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.again = false;
        await this.reconcileOnce();
      } while (this.again);
    })().finally(() => { this.reconciling = null; });
    return this.reconciling;
  }

  async reconcileOnce() {
    if (!this.me) return;
    const seq = this.eventSeq;
    let call = null;
    let incoming = null;
    try {
      const me = await this.api.get('/api/me');
      this.me = { ...this.me, ...me.agent };
      this.csrf = me.csrf_token;
      incoming = me.pending_transfers[0] ?? null;
      if (me.agent.active_call_id) {
        call = (await this.api.get(`/api/calls/${encodeURIComponent(me.agent.active_call_id)}`)).call;
      }
    } catch (err) {
      if (err.status === 401) {
        await this.signedOut('Your session has ended. Sign in again.');
        return;
      }
      this.pageError(`Your calls could not be loaded: ${err.message}`, () => this.reconcile());
      return;
    }
    // An event arrived while we were reading: this snapshot may predate it; read again.
    if (seq !== this.eventSeq) {
      this.again = true;
      return;
    }
    show(byId('page-error'), false);
    this.apply(call, incoming);
    await this.syncRoom();
  }

  apply(call, incoming) {
    if (call?.session_id !== this.call?.session_id) {
      this.entries = new Map();
      this.actions.resetForCall();
    }
    this.call = call;
    for (const e of call?.context ?? []) this.entries.set(e.id, e);
    this.customerAway = customerAwayFrom(call);
    this.view = derivePhase(call, this.me.id);
    this.incoming = incoming;
    this.render();
  }

  /** Get the browser into the room this agent belongs in (or out of any room). */
  async syncRoom() {
    const want = this.view.room;
    if (this.roomRetry.timer && this.roomRetry.room !== want) this.cancelRoomRetry();
    if (!want) {
      if (this.audio.roomName || this.audio.state !== 'idle') await this.audio.leave();
      return;
    }
    if (this.audio.roomName === want && ['connected', 'reconnecting', 'connecting'].includes(this.audio.state)) return;
    if (this.roomRetry.timer) return; // a retry is already scheduled for this room
    let grant = this.pendingGrant?.room_name === want ? this.pendingGrant : null;
    this.pendingGrant = null;
    if (!grant) {
      try {
        grant = await this.api.post('/api/token', { session_id: this.call.session_id });
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          // The call moved on (ended, handed over): read the state again, but never loop on a
          // refusal that keeps coming back.
          this.tokenRefusals += 1;
          if (this.tokenRefusals <= 3) this.again = true;
          else this.pageError(`The call's audio room could not be joined: ${err.message}`, () => this.retryRoomNow());
          return;
        }
        this.scheduleRoomRetry(want, err.message);
        return;
      }
    }
    this.tokenRefusals = 0;
    if (this.view.room !== want) return;
    const ok = await this.audio.join(grant.livekit_url, grant.token, grant.room_name);
    if (ok) {
      this.roomRetry.attempt = 0;
      this.roomRetry.reason = null;
    } else {
      this.scheduleRoomRetry(want, null);
    }
  }

  scheduleRoomRetry(room, reason) {
    const delay = RETRY_DELAYS_MS[Math.min(this.roomRetry.attempt, RETRY_DELAYS_MS.length - 1)];
    this.roomRetry.attempt += 1;
    this.roomRetry.room = room;
    this.roomRetry.reason = reason;
    clearTimeout(this.roomRetry.timer);
    this.roomRetry.timer = setTimeout(() => { this.roomRetry.timer = null; this.reconcile(); }, delay);
    this.renderAudio();
  }

  cancelRoomRetry() {
    clearTimeout(this.roomRetry.timer);
    this.roomRetry = { attempt: 0, timer: null, room: null, reason: null };
  }

  retryRoomNow() {
    this.cancelRoomRetry();
    this.tokenRefusals = 0;
    this.reconcile();
  }

  // -- events -------------------------------------------------------------------------------
  patchTransfer(id, fields) {
    const t = this.call?.transfers.find((x) => x.id === id);
    if (!t) return;
    Object.assign(t, fields);
    this.view = derivePhase(this.call, this.me.id);
  }

  onEvent(type, data) {
    this.eventSeq += 1;
    const meId = this.me?.id;
    const thisCall = this.call && data.session_id === this.call.session_id;
    switch (type) {
      case 'call_assigned':
        this.alert(`New call from ${data.customer_name}${data.caller_number ? ` (${data.caller_number})` : ''}. Joining automatically.`);
        chime();
        break;
      case 'call_missed': {
        // The server has set us away and given the call to someone else; the reconcile below
        // shows both (presence from /api/me, no call).
        const from = thisCall ? ` from ${this.call.customer_name}` : '';
        if (data.microphone_error && this.micReportedFor === data.session_id) break; // said already, with the outcome
        this.alert(`Missed call${from}: ${data.reason} Choose “Available” when you are ready for calls again.`, { sticky: true });
        break;
      }
      case 'customer_presence':
        if (!thisCall) return; // the call's timeline says the same when it loads
        if (data.present) {
          if (this.customerAway) this.notice(`${this.call.customer_name} is back on the call.`);
          this.customerAway = null;
        } else {
          this.customerAway = { session_id: data.session_id, since: data.created_at, grace_s: data.grace_s };
          this.notice(`${this.call.customer_name}'s connection dropped; waiting for them to reconnect.`, 'alert');
        }
        this.render();
        return; // nothing else changed: no reconcile needed
      case 'context_added':
        if (thisCall && data.entry) {
          this.entries.set(data.entry.id, data.entry);
          this.renderContext();
        }
        return; // nothing else changed: no reconcile needed
      case 'transfer_requested':
        this.incoming = {
          transfer_id: data.transfer_id,
          session_id: data.session_id,
          customer_name: data.customer_name,
          from_agent_id: data.from_agent_id,
          from_agent_name: data.from_agent_name,
          summary: data.summary,
          requested_at: data.created_at,
        };
        this.notice(`Incoming transfer: ${data.customer_name}, from ${data.from_agent_name}.`, 'alert');
        show(byId('alert'), false); // the orange panel is the alert; an older banner is stale now
        chime();
        break;
      case 'transfer_ringing':
        this.patchTransfer(data.transfer_id, { status: 'ringing' });
        this.notice(`Ringing ${this.nameOf(data.to_agent_id)}…`);
        break;
      case 'transfer_accepted':
        this.patchTransfer(data.transfer_id, { status: 'briefing' });
        this.alert(`${this.nameOf(data.to_agent_id)} accepted. You are in the private transfer room; the customer is on hold.`);
        break;
      case 'transfer_declined':
      case 'transfer_cancelled':
      case 'transfer_failed':
        this.onTransferEnded(data);
        break;
      case 'transfer_completed':
        this.patchTransfer(data.transfer_id, { status: 'completed' });
        if (this.call && thisCall) this.call.agent_id = data.to_agent_id;
        this.view = derivePhase(this.call, meId);
        if (data.to_agent_id === meId) this.alert('Transfer complete: you now have the customer.');
        else this.alert(`Transfer completed: ${this.nameOf(data.to_agent_id)} has the customer.`);
        break;
      case 'call_ended':
        if (this.incoming?.session_id === data.session_id) this.incoming = null;
        if (thisCall) this.customerAway = null;
        // A failed bridge into LiveKit comes with the SIP service's answer in words (`detail`).
        if (thisCall) this.alert(`The call with ${this.call.customer_name} ended (${data.detail ?? ENDED_REASON[data.reason] ?? data.reason}).`, { sticky: true });
        break;
      case 'agent_left':
        if (data.agent_id !== meId) this.notice(`${this.nameOf(data.agent_id)} left the call.`);
        break;
      default:
        break;
    }
    this.render();
    this.reconcile();
  }

  onTransferEnded(data) {
    const word = OUTCOME_WORD[data.outcome] ?? data.outcome;
    const reason = data.reason ? ` ${data.reason}` : '';
    const wasIncoming = this.incoming?.transfer_id === data.transfer_id;
    const iAmB = wasIncoming || this.view.transfer?.to_agent_id === this.me?.id;
    this.patchTransfer(data.transfer_id, { status: data.outcome, reason: data.reason, error_code: data.error_code });
    if (wasIncoming) this.incoming = null;
    if (iAmB) {
      this.alert(data.handed_over ? 'Agent A left during the briefing: you now have the customer.' : `The transfer was ${word}.${reason}`, { sticky: true });
    } else if (data.outcome === 'caller_left') {
      this.alert(`The transfer ended: the caller hung up.${reason}`, { sticky: true });
    } else {
      this.alert(`Transfer ${word}.${reason} You are back with the customer.`, { sticky: true });
    }
  }

  /**
   * The browser cannot capture our voice while we are in a call's room: the caller would wait
   * in silence (a phone caller would not even be answered). The server passes the call on and
   * sets us away; this is asked once per call, since retrying the microphone fails again.
   */
  async microphoneFailed({ roomName, problem }) {
    const call = this.call;
    if (!call || !this.view.room || roomName !== this.view.room || this.micReportedFor === call.session_id) return;
    this.micReportedFor = call.session_id;
    const broken = `Your microphone is not working: ${problem.reason}.`;
    try {
      const res = await this.api.post('/api/microphone-failed', { session_id: call.session_id, error: problem.reason.slice(0, 200) });
      this.alert(`${broken} ${afterMicrophoneFailed(res)}; you are set to Away. Fix the microphone, then choose “Available” to take calls again.`, { sticky: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        await this.signedOut(SESSION_ENDED.unauthorized);
        return;
      }
      if (err instanceof ApiError && err.status === 403) {
        // We are no longer in that call (it ended or moved on meanwhile): nothing to pass on.
        this.alert(`${broken} Fix it before taking the next call.`, { sticky: true });
      } else {
        // The server did not hear it: a later failure (Retry microphone) may report it again.
        this.micReportedFor = null;
        this.alert(`${broken} The call could not be passed to another agent (${err.message}). Press Retry microphone to try again.`, { sticky: true });
      }
    }
    await this.reconcile();
  }

  /** The banner: the latest thing the agent must not miss. Failures stay until dismissed;
   * good news (a new call, an accepted or completed transfer) steps aside after a while. */
  alert(text, { sticky = false } = {}) {
    clearTimeout(this.alertTimer);
    byId('alert-text').textContent = text;
    show(byId('alert'));
    if (!sticky) this.alertTimer = setTimeout(() => show(byId('alert'), false), ALERT_FADE_MS);
    this.notice(text, 'alert');
  }

  notice(text, level = 'info') {
    const list = byId('notices');
    list.prepend(noticeItem(text, level));
    while (list.children.length > MAX_NOTICES) list.lastElementChild.remove();
  }

  pageError(text, retry) {
    this.retry = retry;
    byId('page-error-text').textContent = text;
    show(byId('page-error'));
  }

  /** Reset (Agent B dashboard): clear what this screen shows and load it again from the server. */
  async reset() {
    fill(byId('notices'));
    show(byId('alert'), false);
    show(byId('page-error'), false);
    this.incoming = null;
    this.customerAway = null;
    this.entries = new Map();
    this.actions.resetForCall();
    this.cancelRoomRetry();
    this.render();
    await this.init();
  }

  // -- rendering ----------------------------------------------------------------------------
  render() {
    const phase = this.view.phase;
    const inCall = phase !== 'idle';
    const incoming = Boolean(this.incoming) && !inCall;
    show(byId('incoming-transfer'), incoming);
    if (incoming) this.renderIncoming();
    else this.incomingTicker.stop();
    show(byId('idle-view'), !inCall && !incoming);
    let idle = MODE === 'agent-b'
      ? 'Waiting for transfers. An incoming transfer appears here with the caller, who is transferring, and the summary.'
      : 'Waiting for calls. New calls are joined automatically while you are available.';
    if (this.me?.presence === 'away') idle = 'You are away: no calls or transfers are routed to you. Choose “Available” when you are ready for them.';
    byId('idle-text').textContent = idle;
    show(byId('call-view'), inCall);
    if (inCall) this.renderCall();
    else this.callTicker.stop();
    if (this.me) {
      byId('agent-name').textContent = `${this.me.name ?? this.me.id} (${this.me.id})`;
      for (const radio of document.querySelectorAll('input[name="presence"]')) radio.checked = radio.value === this.me.presence;
    }
    this.renderAudio();
  }

  renderIncoming() {
    const inc = this.incoming;
    byId('incoming-caller').textContent = inc.customer_name;
    byId('incoming-from').textContent = inc.from_agent_name ?? this.nameOf(inc.from_agent_id);
    renderSummary(byId('incoming-summary'), inc.summary, 'No summary was attached.');
    byId('incoming-transfer').dataset.transferId = inc.transfer_id;
    this.incomingTicker.run(inc.requested_at);
  }

  renderCall() {
    const { phase, transfer } = this.view;
    const call = this.call;
    const other = transfer ? this.nameOf(phase === 'transfer-out' ? transfer.to_agent_id : transfer.from_agent_id) : '';
    const heading = byId('call-heading');
    heading.dataset.phase = phase;
    const [title, sub] = {
      'with-customer': ['Customer Call Active', 'You are talking with the customer.'],
      'transfer-out': transfer?.status === 'briefing'
        ? [`Briefing ${other}`, 'Private transfer room: the customer is on hold and cannot hear you.']
        : [`Calling ${other}…`, 'The customer is on hold while the transfer rings.'],
      'briefing-in': [`Briefing with ${other}`, 'Private transfer room: the customer is on hold and cannot hear you. The summary is below.'],
      'handed-off': ['Transfer completed', 'Another agent has the customer now. Leave the call when you are ready.'],
    }[phase];
    heading.textContent = title;
    byId('call-subheading').textContent = sub;
    byId('call-customer').textContent = `${call.customer_name}${call.caller_number ? ` · ${call.caller_number}` : ''} · ${call.channel === 'phone' ? 'phone' : 'web'}`;

    let since = call.answered_at ?? call.assigned_at;
    let label = 'Call time';
    if (phase === 'briefing-in') {
      since = transfer.answered_at;
      label = 'Briefing time';
    } else if (phase === 'with-customer' && call.agent_id === this.me.id) {
      // Handed over to us: count from when we reached the customer (LiveKit saw us in their
      // room), or from the hand-over itself when that is not known (no webhooks).
      const mine = call.transfers.filter((t) => t.to_agent_id === this.me.id && (t.bridged_at || t.handed_over_at));
      const last = mine[mine.length - 1];
      if (last) since = last.bridged_at ?? last.handed_over_at;
    }
    byId('call-timer-label').textContent = label;
    this.callTicker.run(since);

    const away = this.customerAway?.session_id === call.session_id ? this.customerAway : null;
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

    this.renderContext();
    setDisabled(byId('context-add'), phase === 'handed-off');
    const summary = transfer?.summary ?? call.summary;
    renderSummary(byId('summary-card'), summary);
    show(byId('summary-edit'), owner);

    show(byId('transfer-panel'), owner || phase === 'handed-off');
    show(byId('transfer-form'), phase === 'with-customer');
    const mine = call.transfers.filter((t) => t.from_agent_id === this.me.id);
    const latest = mine[mine.length - 1] ?? null;
    const [status, text] = transferStatus(latest, (id) => this.nameOf(id));
    const statusEl = byId('transfer-status');
    statusEl.dataset.status = status;
    statusEl.textContent = text;
    show(byId('complete-transfer'), phase === 'transfer-out');
    setDisabled(byId('complete-transfer'), transfer?.status !== 'briefing');
    show(byId('cancel-transfer'), phase === 'transfer-out');
  }

  renderContext() {
    renderEntries(byId('context-list'), this.entries.values(), (id) => this.nameOf(id));
  }

  renderFeed(mode) {
    const el = byId('feed-status');
    el.dataset.mode = mode;
    el.textContent = {
      connecting: 'Updates: connecting…',
      sse: 'Updates: live',
      polling: 'Updates: checking every 2 s (live channel unavailable)',
    }[mode] ?? mode;
  }

  renderAudio() {
    const a = this.audio;
    const el = byId('audio-status');
    const roomKind = a.roomName?.startsWith('transfer_') ? 'private transfer room' : 'customer room';
    const who = { customer: (p) => `${p.name} (customer)`, hold: () => 'hold music' };
    const people = a.remotes().map((p) => who[p.role]?.(p) ?? p.name);
    let text;
    switch (a.state) {
      case 'connecting': text = `Connecting to the ${roomKind}…`; break;
      case 'connected': text = `Connected, ${roomKind}${people.length ? `, with ${people.join(', ')}` : ', nobody else here yet'}`; break;
      case 'reconnecting': text = 'Reconnecting…'; break;
      case 'failed':
      case 'disconnected': text = this.roomRetry.timer ? 'Not connected; retrying automatically' : 'Not connected'; break;
      default: text = this.view.room ? 'Joining…' : 'Not in a room';
    }
    el.dataset.state = a.state;
    el.textContent = text;
    const problem = a.problem ?? (this.roomRetry.reason ? { message: `The call service could not be reached (${this.roomRetry.reason}). Retrying.` } : null);
    show(byId('audio-problem'), Boolean(problem) && !a.connected && Boolean(this.view.room));
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

const app = new Console();
// Diagnostics for support staff and the browser tests.
window.wtDiagnostics = {
  audioStats: () => app.audio.stats(),
  audioState: () => app.audio.state,
  remotes: () => app.audio.remotes(),
  feedMode: () => app.feed?.mode ?? 'off',
  phase: () => app.view.phase,
};
app.init();
