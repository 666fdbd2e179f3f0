// The agent's session on this page: who is signed in, starting the event feed from the /api/me
// answer, signing out (here, in another tab, or because the server ended the session) and the
// Agent B dashboard's Reset.

import { sessionEndedMessage } from './messages.js';

export class Session {
  /**
   * @param {object} deps
   * @param {import('../lib/api.js').Api} deps.api
   * @param {import('./state.js').Store} deps.store
   * @param {import('./sync.js').Sync} deps.sync
   * @param {import('./room.js').RoomLink} deps.room
   * @param {import('./notify.js').Notifier} deps.notify
   * @param {import('./screen.js').Screen} deps.screen
   * @param {() => void} deps.loadAgents  refresh the transfer target list (errors shown)
   */
  constructor(deps) {
    Object.assign(this, deps);
    this.signingOut = false;
  }

  /** Load who we are and where to start from; `loginMessage` is shown if nobody is signed in. */
  async init(loginMessage) {
    let me;
    try {
      me = await this.api.get('/api/me');
    } catch (err) {
      if (err.status === 401) this.screen.showLogin(loginMessage);
      else this.notify.pageError(`The server could not be reached: ${err.message}`, () => this.init(loginMessage));
      return;
    }
    await this.signedIn(me);
  }

  /** Build the screen from an /api/me answer: a ringing transfer shows at once, and events
   * are taken from its last_event_id on (nothing older is replayed). */
  signedIn(me) {
    this.store.dispatch({ type: 'signedIn', me });
    this.screen.showConsole();
    this.sync.startFeed(me.last_event_id);
    this.loadAgents();
    return this.sync.reconcile();
  }

  /** The feed heard that this session ended. Our own "Sign out" ends it too; it says so itself. */
  authLost(reason) {
    if (!this.signingOut) this.signedOut(sessionEndedMessage(reason));
  }

  async signedOut(message) {
    this.sync.stopFeed();
    this.store.dispatch({ type: 'signedOut' });
    await this.room.leave();
    this.screen.render(this.store.state);
    this.screen.showLogin(message);
  }

  async logout() {
    // Signing out ends this session's event stream too (session_ended): that is expected here.
    this.signingOut = true;
    try {
      await this.api.post('/api/logout');
      await this.signedOut('You are signed out.');
    } finally {
      this.signingOut = false;
    }
  }

  /** Reset (Agent B dashboard): clear what this screen shows and load it again from the server. */
  async reset() {
    this.notify.clear();
    this.room.cancelRetry();
    this.store.dispatch({ type: 'cleared' });
    await this.init();
  }
}
