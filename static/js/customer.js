// The customer page ("Call Transfer System"): start a web call, talk, mute, hang up.
//
// The call survives a network blip (livekit-client reconnects by itself; if the room connection
// is lost for good we fetch a fresh token and join again) and a page refresh: the session id and
// the customer key live in sessionStorage, and POST /api/token answers with the call's room.

import { Api, ApiError } from './lib/api.js';
import { CallAudio } from './lib/audio.js';
import { Ticker, busy, byId, setDisabled, show } from './lib/dom.js';

const STORE_KEY = 'wt.customer.call';
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
const ENDED_CODES = new Set(['call_ended', 'not_found', 'invalid_customer_key']);

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

    this.audio.addEventListener('change', () => this.render());
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
      this.reconnect(true);
    } else {
      this.showView('start');
    }
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
        saw_agent: false,
      };
      this.save();
      this.showView('call');
      this.ticker.run(this.call.started_at);
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
        this.finish('This call has ended.');
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
    this.call = null;
    sessionStorage.removeItem(STORE_KEY);
    this.ending = false;
    this.retryAttempt = 0;
    this.ticker.stop();
    await this.audio.leave();
    byId('ended-text').textContent = text;
    this.showView('ended');
  }

  statusText() {
    const a = this.audio;
    if (!this.call) return ['idle', 'Not connected'];
    if (a.state === 'connecting') return ['connecting', 'Connecting…'];
    if (a.state === 'reconnecting') return ['reconnecting', 'Reconnecting…'];
    if (a.state === 'connected') {
      const agent = a.remotes().find((p) => p.role === 'agent');
      if (agent) {
        if (!this.call.saw_agent) {
          this.call.saw_agent = true;
          this.save();
        }
        return ['with-agent', `Connected with ${agent.name}`];
      }
      if (this.call.saw_agent) return ['on-hold', 'On hold. Please stay on the line; an agent will be right with you.'];
      return ['waiting', 'Connected. Waiting for an agent…'];
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
};
page.init();
