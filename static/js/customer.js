// The customer page ("Call Transfer System"): start a web call, talk, mute, hang up.
//
// The call survives a network blip (livekit-client reconnects by itself; if the room connection
// is lost for good we fetch a fresh token and join again) and a page refresh: the session id and
// the customer key live in sessionStorage, and POST /api/token answers with the call's room.
//
// What the call is doing (waiting for an agent, with whom, on hold, ended and why) is pushed over
// the call's status stream (lib/status_feed.js); while that fails it comes from
// GET /api/calls/<id>/status, read when someone joins or leaves the room and every 3 s.

import { Api, ApiError } from './lib/api.js';
import { CallAudio } from './lib/audio.js';
import { Ticker, busy, byId, setDisabled, show } from './lib/dom.js';
import { CALL_FINAL_STATUSES } from './lib/protocol.js';
import { StatusFeed } from './lib/status_feed.js';

const STORE_KEY = 'wt.customer.call';
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
const ENDED_CODES = new Set(['call_ended', 'not_found', 'invalid_customer_key']);
const OVER = new Set(CALL_FINAL_STATUSES);
const ENDED_TEXT = {
  customer_hung_up: 'You hung up. Thank you for calling.',
  agent_ended: 'The agent ended the call. Thank you for calling.',
  agent_b_hung_up: 'The agent ended the call. Thank you for calling.',
  customer_left: 'The call ended because your connection was lost for too long. Start a new call if you still need help.',
};

function loadCall() {
  const raw = sessionStorage.getItem(STORE_KEY);
  if (!raw) return null;
  try {
    const call = JSON.parse(raw);
    return call && call.session_id && call.customer_key ? call : null;
  } catch (err) {
    console.warn('discarding unreadable stored call', err);
    sessionStorage.removeItem(STORE_KEY);
    return null;
  }
}

class CustomerPage {
  constructor() {
    this.call = loadCall();
    this.api = new Api({ customerKey: () => this.call?.customer_key ?? null });
    this.audio = new CallAudio(byId('remote-audio'));
    this.ticker = new Ticker(byId('call-timer'));
    this.retryAttempt = 0;
    this.retryTimer = null;
    this.retryAt = null;
    this.ending = false;
    this.status = null; // the last status pushed or read (/api/calls/<id>/status)
    this.feed = null;
    this.roomPeople = '';

    this.audio.addEventListener('change', () => {
      // Someone joined or left our room (an agent, or the agent leaving for a transfer): the
      // call's status has probably changed; ask now rather than at the next poll.
      const people = this.audio.remotes().map((p) => p.identity).sort().join(' ');
      if (people !== this.roomPeople) {
        this.roomPeople = people;
        if (this.feed?.mode !== 'sse') this.refreshStatus();
      }
      this.render();
    });
    this.audio.addEventListener('disconnected', () => this.reconnect());
    byId('start-form').addEventListener('submit', (e) => { e.preventDefault(); this.start(); });
    byId('hang-up').addEventListener('click', (e) => busy(e.currentTarget, () => this.hangUp()));
    byId('mute').addEventListener('click', () => this.audio.setMuted(!this.audio.muted));
    byId('audio-retry').addEventListener('click', () => this.reconnect(true));
    byId('mic-retry').addEventListener('click', () => this.audio.retryMicrophone());
    byId('enable-audio').addEventListener('click', () => {
      this.audio.startAudio().catch((err) => {
        byId('page-error-text').textContent = `The browser did not start the call audio: ${err.message ?? err}`;
        show(byId('page-error'));
      });
    });
    byId('page-error-retry').addEventListener('click', () => { show(byId('page-error'), false); this.reconnect(true); });
    byId('new-call').addEventListener('click', () => this.showView('start'));
  }

  init() {
    if (this.call) {
      this.showView('call');
      this.ticker.run(this.call.started_at);
      this.followStatus();
      this.reconnect(true);
    } else {
      this.showView('start');
    }
  }

  /** Follow the call's status while there is a call: pushed, or polled when the stream fails. */
  followStatus() {
    this.feed?.stop();
    const call = this.call;
    if (!call) return;
    this.feed = new StatusFeed({
      sessionId: call.session_id,
      onStatus: (status) => { if (this.call === call) this.applyStatus(status); },
      poll: () => this.refreshStatus(),
      onMode: (mode) => { byId('call-view').dataset.feed = mode; },
    });
    this.feed.start();
  }

  async refreshStatus() {
    const call = this.call;
    if (!call || this.ending) return;
    let status;
    try {
      status = await this.api.get(`/api/calls/${encodeURIComponent(call.session_id)}/status`);
    } catch (err) {
      if (this.call !== call) return;
      if (err instanceof ApiError && ENDED_CODES.has(err.code)) {
        await this.finish('This call has ended.');
        return;
      }
      console.warn('could not read the call status', err); // the next poll asks again
      return;
    }
    if (this.call !== call) return;
    await this.applyStatus(status);
  }

  async applyStatus(status) {
    if (this.ending) return;
    this.status = status;
    if (OVER.has(status.status)) {
      await this.finish(ENDED_TEXT[status.end_reason] ?? 'This call has ended. Thank you for calling.');
      return;
    }
    this.render();
  }

  showView(name) {
    show(byId('start-view'), name === 'start');
    show(byId('call-view'), name === 'call');
    show(byId('ended-view'), name === 'ended');
    if (name === 'start') byId('customer-name').focus();
    if (name === 'ended') byId('ended-heading').focus();
  }

  save() {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(this.call));
  }

  async start() {
    const input = byId('customer-name');
    const error = byId('start-error');
    const name = input.value.trim();
    if (!name) {
      error.textContent = 'Please enter your name.';
      show(error);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    input.removeAttribute('aria-invalid');
    show(error, false);
    await busy(byId('start-call'), async () => {
      let created;
      try {
        created = await this.api.post('/api/create-call', { customer_name: name });
      } catch (err) {
        error.textContent = err instanceof ApiError ? `The call could not be started: ${err.message}` : String(err);
        show(error);
        return;
      }
      this.call = {
        session_id: created.session_id,
        customer_key: created.customer_key,
        customer_name: name,
        started_at: new Date().toISOString(),
      };
      this.status = null;
      this.save();
      this.showView('call');
      this.ticker.run(this.call.started_at);
      this.followStatus();
      await this.join(created);
    });
  }

  /** Join the call's room with a fresh token from the API (or the one just given). */
  async reconnect(now = false) {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
    if (!this.call || this.ending) return;
    if (!now && this.retryAttempt > 0) {
      this.scheduleRetry();
      return;
    }
    let grant;
    try {
      grant = await this.api.post('/api/token', { session_id: this.call.session_id });
    } catch (err) {
      if (err instanceof ApiError && ENDED_CODES.has(err.code)) {
        // The status says how it ended (or, for an unknown call, finishes it plainly).
        await this.refreshStatus();
        if (this.call) await this.finish('This call has ended.');
        return;
      }
      console.warn('could not get a call token', err);
      this.scheduleRetry(err.message);
      return;
    }
    await this.join(grant);
  }

  async join(grant) {
    const ok = await this.audio.join(grant.livekit_url, grant.token, grant.room_name);
    if (ok) {
      this.retryAttempt = 0;
      this.retryAt = null;
      this.retryReason = null;
    } else if (this.call) {
      this.scheduleRetry();
    }
    this.render();
  }

  scheduleRetry(reason) {
    if (!this.call || this.ending) return;
    const delay = RETRY_DELAYS_MS[Math.min(this.retryAttempt, RETRY_DELAYS_MS.length - 1)];
    this.retryAttempt += 1;
    this.retryAt = Date.now() + delay;
    this.retryReason = reason ?? null;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.reconnect(true), delay);
    this.render();
  }

  async hangUp() {
    if (!this.call) return;
    this.ending = true;
    try {
      await this.api.post('/api/end-call', { session_id: this.call.session_id });
    } catch (err) {
      if (!(err instanceof ApiError && ENDED_CODES.has(err.code))) {
        this.ending = false;
        byId('page-error-text').textContent = `Hanging up failed: ${err.message}`;
        show(byId('page-error'));
        return;
      }
    }
    await this.finish('You hung up. Thank you for calling.');
  }

  async finish(text) {
    clearTimeout(this.retryTimer);
    this.feed?.stop();
    this.feed = null;
    this.call = null;
    this.status = null;
    sessionStorage.removeItem(STORE_KEY);
    this.ending = false;
    this.retryAttempt = 0;
    this.ticker.stop();
    await this.audio.leave();
    byId('ended-text').textContent = text;
    this.showView('ended');
  }

  /** [state, text] of the status line: our connection first, then what the call is doing. */
  statusText() {
    const a = this.audio;
    if (!this.call) return ['idle', 'Not connected'];
    if (a.state === 'connecting') return ['connecting', 'Connecting…'];
    if (a.state === 'reconnecting') return ['reconnecting', 'Reconnecting…'];
    if (a.state === 'connected') {
      const s = this.status;
      const agent = s?.agent_name ?? 'your agent';
      const people = a.remotes();
      const withAgent = people.some((p) => p.role === 'agent');
      // The worker's hold music is in the room while nobody talks with the customer (a consult,
      // a new agent on the way): it is a reason to stay on the line, never "connected with".
      const holdMusic = people.some((p) => p.role === 'hold');
      switch (s?.status) {
        case 'active':
        case 'transferred':
          // The agent may still be on their way into the room (just answered, or taking over).
          if (withAgent) return ['with-agent', `Connected with ${agent}`];
          if (holdMusic) return ['on-hold', `On hold — please stay on the line. ${agent} is joining…`];
          return ['joining', `Connected. ${agent} is joining…`];
        case 'on_hold':
          return ['on-hold', `On hold: ${agent} is bringing in a colleague to help you. Please stay on the line.`];
        case 'ringing':
          if (holdMusic) return ['on-hold', `On hold — please stay on the line. ${agent} is joining…`];
          return ['waiting', `Connected. ${agent} is joining…`];
        case 'queued':
          if (holdMusic) return ['on-hold', 'On hold — please stay on the line. We are finding an agent for you.'];
          return ['waiting', 'Connected. Waiting for an agent…'];
        default:
          return ['connected', 'Connected.'];
      }
    }
    if (this.retryAt) return ['retrying', 'Connection lost. Trying again automatically…'];
    return ['disconnected', 'Connection lost. Reconnecting…'];
  }

  render() {
    const a = this.audio;
    const [state, text] = this.statusText();
    const status = byId('call-status');
    status.dataset.state = state;
    status.textContent = text;

    const mute = byId('mute');
    mute.setAttribute('aria-pressed', String(a.muted));
    mute.textContent = a.muted ? 'Unmute' : 'Mute';
    setDisabled(mute, !a.connected);

    const problem = a.problem ?? (this.retryAt && this.retryReason ? { message: `The call service could not be reached (${this.retryReason}). Retrying.` } : null);
    show(byId('audio-problem'), Boolean(problem) && a.state !== 'connected');
    byId('audio-problem-text').textContent = problem?.message ?? '';
    show(byId('mic-problem'), Boolean(a.micProblem));
    byId('mic-problem-text').textContent = a.micProblem?.message ?? '';
    show(byId('enable-audio-box'), a.connected && !a.canPlay);
  }
}

const page = new CustomerPage();
// Diagnostics for support staff and the browser tests: audio statistics of this session.
window.wtDiagnostics = {
  audioStats: () => page.audio.stats(),
  audioState: () => page.audio.state,
  remotes: () => page.audio.remotes(),
  callStatus: () => page.status,
  statusFeed: () => page.feed?.mode ?? null,
};
page.init();
