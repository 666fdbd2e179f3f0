// Getting the browser into the LiveKit room the agent belongs in (the state's view.room), or out
// of any room: tokens, the grant an action already holds, retries with backoff when the call
// service cannot be reached, and reporting a microphone that fails while in a call's room.

import { ApiError } from '../lib/api.js';
import { afterMicrophoneFailed, sessionEndedMessage } from './messages.js';

const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
const MAX_TOKEN_REFUSALS = 3;

export class RoomLink {
  /**
   * @param {object} deps
   * @param {import('../lib/api.js').Api} deps.api
   * @param {import('../lib/audio.js').CallAudio} deps.audio
   * @param {{state: object, dispatch(action: object): object[]}} deps.store
   * @param {{alert: Function, pageError: Function}} deps.notify
   * @param {() => Promise<void>} deps.reconcile   read the server's state again
   * @param {(message: string) => Promise<void>} deps.signedOut
   * @param {() => void} deps.onChange   the retry status changed (render the audio line)
   */
  constructor({ api, audio, store, notify, reconcile, signedOut, onChange }) {
    Object.assign(this, { api, audio, store, notify, reconcile, signedOut, onChange });
    this.retry = { attempt: 0, timer: null, room: null, reason: null };
    this.tokenRefusals = 0;
    this.pendingGrant = null;
  }

  /** What the audio status line shows about retries. */
  status() {
    return { retrying: Boolean(this.retry.timer), reason: this.retry.reason };
  }

  /** A token an action received with its answer (starting or accepting a transfer). */
  offerGrant({ transfer, token, livekit_url: url }) {
    this.pendingGrant = { room_name: transfer.transfer_room, token, livekit_url: url };
  }

  /**
   * Get the browser into the room this agent belongs in (or out of any room).
   * @returns {Promise<boolean>} true when the server's state should be read again first
   */
  async follow() {
    const want = this.store.state.view.room;
    if (this.retry.timer && this.retry.room !== want) this.cancelRetry();
    if (!want) {
      if (this.audio.roomName || this.audio.state !== 'idle') await this.audio.leave();
      return false;
    }
    if (this.audio.roomName === want && ['connected', 'reconnecting', 'connecting'].includes(this.audio.state)) return false;
    if (this.retry.timer) return false; // a retry is already scheduled for this room
    let grant = this.pendingGrant?.room_name === want ? this.pendingGrant : null;
    this.pendingGrant = null;
    if (!grant) {
      try {
        grant = await this.api.post('/api/token', { session_id: this.store.state.call.session_id });
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          // The call moved on (ended, handed over): read the state again, but never loop on a
          // refusal that keeps coming back.
          this.tokenRefusals += 1;
          if (this.tokenRefusals <= MAX_TOKEN_REFUSALS) return true;
          this.notify.pageError(`The call's audio room could not be joined: ${err.message}`, () => this.retryNow());
          return false;
        }
        this.scheduleRetry(want, err.message);
        return false;
      }
    }
    this.tokenRefusals = 0;
    if (this.store.state.view.room !== want) return false;
    const ok = await this.audio.join(grant.livekit_url, grant.token, grant.room_name);
    if (ok) {
      this.retry.attempt = 0;
      this.retry.reason = null;
    } else {
      this.scheduleRetry(want, null);
    }
    return false;
  }

  scheduleRetry(room, reason) {
    const delay = RETRY_DELAYS_MS[Math.min(this.retry.attempt, RETRY_DELAYS_MS.length - 1)];
    this.retry.attempt += 1;
    this.retry.room = room;
    this.retry.reason = reason;
    clearTimeout(this.retry.timer);
    this.retry.timer = setTimeout(() => { this.retry.timer = null; this.reconcile(); }, delay);
    this.onChange();
  }

  cancelRetry() {
    clearTimeout(this.retry.timer);
    this.retry = { attempt: 0, timer: null, room: null, reason: null };
  }

  retryNow() {
    this.cancelRetry();
    this.tokenRefusals = 0;
    this.reconcile();
  }

  leave() {
    return this.audio.leave();
  }

  /**
   * The browser cannot capture our voice while we are in a call's room: the caller would wait
   * in silence (a phone caller would not even be answered). The server passes the call on and
   * sets us away; this is asked once per call, since retrying the microphone fails again.
   */
  async microphoneFailed({ roomName, problem }) {
    const { call, view, micReportedFor } = this.store.state;
    if (!call || !view.room || roomName !== view.room || micReportedFor === call.session_id) return;
    this.store.dispatch({ type: 'micReported', sessionId: call.session_id });
    const broken = `Your microphone is not working: ${problem.reason}.`;
    try {
      const res = await this.api.post('/api/microphone-failed', { session_id: call.session_id, error: problem.reason.slice(0, 200) });
      this.notify.alert(`${broken} ${afterMicrophoneFailed(res)}; you are set to Away. Fix the microphone, then choose “Available” to take calls again.`, { sticky: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        await this.signedOut(sessionEndedMessage('unauthorized'));
        return;
      }
      if (err instanceof ApiError && err.status === 403) {
        // We are no longer in that call (it ended or moved on meanwhile): nothing to pass on.
        this.notify.alert(`${broken} Fix it before taking the next call.`, { sticky: true });
      } else {
        // The server did not hear it: a later failure (Retry microphone) may report it again.
        this.store.dispatch({ type: 'micReported', sessionId: null });
        this.notify.alert(`${broken} The call could not be passed to another agent (${err.message}). Press Retry microphone to try again.`, { sticky: true });
      }
    }
    await this.reconcile();
  }
}
