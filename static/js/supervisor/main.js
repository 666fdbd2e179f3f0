// The supervisor view (/supervisor): the floor (queue, live calls, agents) pushed over SSE with
// polling as fallback, today's transfer figures from the database, and monitor / whisper /
// barge on any live call. Only supervisors get data: the API answers anyone else 403.

import { Api } from '../lib/api.js';
import { CallAudio } from '../lib/audio.js';
import { busy, byId, show } from '../lib/dom.js';
import { FLOOR_EVENT } from '../lib/protocol.js';
import { SnapshotFeed } from '../lib/snapshot_feed.js';
import { Coach } from './coach.js';
import { FloorView } from './floor.js';
import { isoWithOffset, localMidnight, StatsPanel } from './stats.js';

const FEED_TEXT = { connecting: 'Updates: connecting…', sse: 'Updates: live', polling: 'Updates: every few seconds' };

let me = null;
let feed = null;
const api = new Api({ csrf: () => me?.csrf_token ?? null });
const audio = new CallAudio(byId('supervise-remote'));
const stats = new StatsPanel(api);
const coach = new Coach({ api, audio, error: pageError });
const floor = new FloorView({
  me: () => me?.agent.id ?? null,
  active: () => coach.current,
  onCoach: (call, mode) => coach.start(call, mode),
});
coach.onChange = () => floor.refreshCoach();

function pageError(message, retry = null) {
  byId('page-error-text').textContent = message;
  const button = byId('page-error-retry');
  show(button, Boolean(retry));
  button.onclick = retry ? () => { show(byId('page-error'), false); retry(); } : null;
  show(byId('page-error'), true);
}

function showOnly(id) {
  for (const view of ['login-view', 'not-supervisor', 'floor-view']) show(byId(view), view === id);
}

function floorQuery() {
  return new URLSearchParams({ since: isoWithOffset(localMidnight()) }).toString();
}

let lastFloor = null;

function showFloor(view) {
  floor.render(view);
  coach.floorChanged(view);
  // Polling brings the same floor every few seconds: only a change can move the figures.
  const text = JSON.stringify({ ...view, server_time: null });
  if (text !== lastFloor) stats.changed();
  lastFloor = text;
}

async function pollFloor() {
  try {
    showFloor(await api.get(`/api/supervisor/floor?${floorQuery()}`));
  } catch (err) {
    if (err.status === 401) signedOut('Your session has ended. Sign in again.');
    else byId('feed-status').textContent = `Updates: the server could not be reached (${err.message})`;
  }
}

function startFeed() {
  feed?.stop();
  feed = new SnapshotFeed({
    // Asked at every reconnection: "today" moves on at midnight.
    url: () => `/api/supervisor/events?${floorQuery()}`,
    event: FLOOR_EVENT,
    onView: showFloor,
    poll: pollFloor,
    onMode: (mode) => {
      const status = byId('feed-status');
      status.dataset.mode = mode;
      status.textContent = FEED_TEXT[mode];
    },
    replacedEvents: ['stream_replaced'],
    endEvents: {
      // The account is no longer a supervisor: the page says so (init reads the role again).
      session_ended: (data) => (data.reason === 'not_supervisor' ? init() : signedOut('Your session has ended. Sign in again.')),
    },
  });
  feed.start();
}

async function signedOut(message) {
  feed?.stop();
  feed = null;
  stats.stop();
  me = null;
  await coach.stop().catch(() => audio.leave());
  show(byId('agent-bar'), false);
  showOnly('login-view');
  const error = byId('login-error');
  error.textContent = message ?? '';
  show(error, Boolean(message));
  byId('login-agent').focus();
}

async function init() {
  try {
    me = await api.get('/api/me');
  } catch (err) {
    if (err.status === 401) signedOut(null);
    else pageError(`The server could not be reached: ${err.message}`, init);
    return;
  }
  byId('agent-name').textContent = `${me.agent.name} (${me.agent.id})`; // as the console shows it
  show(byId('agent-bar'), true);
  if (me.agent.role !== 'supervisor') {
    byId('not-supervisor-id').textContent = me.agent.id;
    showOnly('not-supervisor');
    return;
  }
  showOnly('floor-view');
  await pollFloor();
  startFeed();
  stats.start();
}

byId('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  busy(byId('login-submit'), async () => {
    const agentId = byId('login-agent').value.trim();
    const password = byId('login-password').value;
    if (!agentId || !password) {
      signedOut('Enter your agent ID and password.');
      return;
    }
    try {
      // This page takes no calls: whoever signs in here is not made available for callers.
      await api.post('/api/login', { agent_id: agentId, password, stay_away: true });
    } catch (err) {
      signedOut(err.message);
      byId('login-password').focus();
      return;
    }
    byId('login-password').value = '';
    show(byId('login-error'), false);
    await init();
  });
});
byId('logout').addEventListener('click', () => busy(byId('logout'), async () => {
  feed?.stop();
  try {
    await api.post('/api/logout');
  } catch (err) {
    pageError(`Signing out failed: ${err.message}`);
    return;
  }
  await signedOut('You are signed out.');
}));

// For support staff and the browser tests.
window.wtDiagnostics = {
  feedMode: () => feed?.mode ?? 'stopped',
  audioState: () => audio.state,
  audioStats: () => audio.stats(),
  remotes: () => audio.remotes(),
};
init();
