// The agent console (/agent) and the Agent B dashboard (/agent-b): one page, two layouts.
// Any agent can be Agent A on one call and Agent B on the next, so both pages handle incoming
// calls, outgoing transfers and incoming transfers.
//
// This module only wires the parts together. Data flows one way:
//   actions / server events → store.dispatch (state.js: pure) → effects → screen, notices
//   sync.js reconciles the state with the server; room.js follows the state's room.

import { Api } from '../lib/api.js';
import { CallAudio, LevelMeter } from '../lib/audio.js';
import { chime } from '../lib/chime.js';
import { byId } from '../lib/dom.js';
import { Actions } from './actions.js';
import { CallHistory } from './history.js';
import { Notifier } from './notify.js';
import { RoomLink } from './room.js';
import { Screen } from './screen.js';
import { Session } from './session.js';
import { nameOf, Store } from './state.js';
import { Sync } from './sync.js';

const store = new Store();
const api = new Api({ csrf: () => store.state.csrf });
const audio = new CallAudio(byId('remote-audio'));
const meter = new LevelMeter(byId('customer-level'), audio, 'customer');
const notify = new Notifier();

// The modules below reach each other through callbacks, called only once all are built.
const reconcile = () => sync.reconcile();
const signedOut = (message) => session.signedOut(message);

const room = new RoomLink({ api, audio, store, notify, reconcile, signedOut, onChange: () => screen.renderAudio(store.state) });
const screen = new Screen({ mode: document.body.dataset.mode === 'agent-b' ? 'agent-b' : 'agent', audio, roomStatus: () => room.status() });
const sync = new Sync({
  api, store, room, notify, signedOut,
  onFeedMode: (mode) => screen.renderFeed(mode),
  onAuthLost: (reason) => session.authLost(reason),
});
const session = new Session({ api, store, sync, room, notify, screen, loadAgents: () => actions.guard(() => sync.loadAgents()) });
const actions = new Actions({ api, store, sync, room, session, notify });
const history = new CallHistory({ api, byId, nameOf: (id) => nameOf(store.state, id) });

/** What a state change asks of the page, in order. */
const EFFECTS = {
  alert: (e) => notify.alert(e.text, { sticky: e.sticky }),
  notice: (e) => notify.notice(e.text, e.level),
  hideAlert: () => notify.hideAlert(),
  chime: () => chime(),
  callChanged: () => actions.resetForCall(),
  render: (e, state) => screen.render(state),
  renderContext: (e, state) => screen.renderContext(state),
  renderAgents: (e, state) => screen.renderAgents(state),
  reconcile: () => { sync.reconcile(); },
  refreshHistory: () => { history.refresh(); },
};
store.subscribe((state, effects) => {
  for (const effect of effects) EFFECTS[effect.kind](effect, state);
});

audio.addEventListener('change', () => screen.renderAudio(store.state));
audio.addEventListener('disconnected', () => sync.reconcile());
audio.addEventListener('microphonefailed', (e) => room.microphoneFailed(e.detail));
byId('audio-retry').addEventListener('click', () => room.retryNow());
byId('mic-retry').addEventListener('click', () => audio.retryMicrophone());
byId('mute').addEventListener('click', () => audio.setMuted(!audio.muted));
byId('enable-audio').addEventListener('click', () => {
  Promise.all([audio.startAudio(), meter.resume()])
    .catch((err) => notify.alert(`The browser did not start the call audio: ${err.message ?? err}`, { sticky: true }));
});

// Diagnostics for support staff and the browser tests.
window.wtDiagnostics = {
  audioStats: () => audio.stats(),
  audioState: () => audio.state,
  remotes: () => audio.remotes(),
  feedMode: () => sync.feedMode,
  phase: () => store.state.view.phase,
};
session.init();
