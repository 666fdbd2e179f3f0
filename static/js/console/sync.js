// Keeping the console in step with the server, which is the source of truth. `reconcile()` loads
// it (/api/me with the transfers ringing for us, then the active call) into the state, which
// derives the phase and the room this agent belongs in, and then gets the browser there. Events
// (SSE, or polling when SSE fails, both starting from the /api/me answer's last_event_id) update
// the state at once and then trigger a reconcile, so a refresh, a missed event or a reconnect
// always converge on the same state.

import { EventFeed } from '../lib/feed.js';

export class Sync {
  /**
   * @param {object} deps
   * @param {import('../lib/api.js').Api} deps.api
   * @param {import('./state.js').Store} deps.store
   * @param {import('./room.js').RoomLink} deps.room
   * @param {{pageError: Function, hidePageError: Function}} deps.notify
   * @param {(mode: string) => void} deps.onFeedMode
   * @param {(reason: string) => void} deps.onAuthLost   the feed heard that this session ended
   * @param {(message: string) => Promise<void>} deps.signedOut
   */
  constructor({ api, store, room, notify, onFeedMode, onAuthLost, signedOut }) {
    Object.assign(this, { api, store, room, notify, onFeedMode, onAuthLost, signedOut });
    this.feed = null;
    this.eventSeq = 0;
    this.reconciling = null;
    this.again = false;
  }

  get feedMode() {
    return this.feed?.mode ?? 'off';
  }

  /** Take events from `since` (an /api/me answer's last_event_id) on: nothing older is replayed. */
  startFeed(since) {
    this.feed?.stop();
    this.feed = new EventFeed({
      api: this.api,
      agentId: this.store.state.me.id,
      since,
      onEvent: (type, data) => this.onEvent(type, data),
      onSynced: () => this.reconcile(),
      onMode: (mode) => this.onFeedMode(mode),
      onAuthLost: (reason) => this.onAuthLost(reason),
    });
    this.onFeedMode('connecting');
    this.feed.start();
  }

  stopFeed() {
    this.feed?.stop();
    this.feed = null;
  }

  /** An event changes the state at once; the store's effects ask for a reconcile after it. */
  onEvent(type, data) {
    this.eventSeq += 1;
    this.store.dispatch({ type: 'event', event: type, data });
  }

  /** Read the server's state; calls made meanwhile share this run, which then reads again. */
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
    if (!this.store.state.me) return;
    const seq = this.eventSeq;
    let call = null;
    let incoming;
    try {
      const me = await this.api.get('/api/me');
      if (!this.store.state.me) return; // signed out while we were reading
      this.store.dispatch({ type: 'me', me });
      incoming = me.pending_transfers[0] ?? null;
      if (me.agent.active_call_id) {
        call = (await this.api.get(`/api/calls/${encodeURIComponent(me.agent.active_call_id)}`)).call;
      }
    } catch (err) {
      if (err.status === 401) {
        await this.signedOut('Your session has ended. Sign in again.');
        return;
      }
      this.notify.pageError(`Your calls could not be loaded: ${err.message}`, () => this.reconcile());
      return;
    }
    // An event arrived while we were reading: this snapshot may predate it; read again.
    if (seq !== this.eventSeq) {
      this.again = true;
      return;
    }
    if (!this.store.state.me) return; // signed out while we were reading
    this.notify.hidePageError();
    this.store.dispatch({ type: 'snapshot', call, incoming });
    if (await this.room.follow()) this.again = true;
  }

  /** The transfer target lists: agents and whether they are free, teams and how many are. */
  async loadAgents() {
    const [{ agents }, { teams }] = await Promise.all([this.api.get('/api/agents'), this.api.get('/api/teams')]);
    this.store.dispatch({ type: 'agents', agents });
    this.store.dispatch({ type: 'teams', teams });
  }
}
