import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ApiError } from '../../static/js/lib/api.js';
import { Store } from '../../static/js/console/state.js';
import { Sync } from '../../static/js/console/sync.js';
import { ALICE, call, meAnswer } from './fixtures.js';

/** An API double answering GETs from a table of functions (path → answer or error). */
function fakeApi(routes) {
  const calls = [];
  return {
    calls,
    async get(path) {
      calls.push(path);
      const answer = routes[path];
      if (!answer) throw new ApiError(404, 'not_found', path);
      return answer();
    },
  };
}

function setup(routes, { follow = async () => false } = {}) {
  const store = new Store();
  store.dispatch({ type: 'signedIn', me: meAnswer() });
  const api = fakeApi(routes);
  const log = [];
  const notify = { pageError: (text) => log.push(['pageError', text]), hidePageError: () => log.push(['hidePageError']) };
  const room = { follow: async () => { log.push(['follow', store.state.view.room]); return follow(); } };
  const sync = new Sync({
    api, store, room, notify,
    onFeedMode: () => {}, onAuthLost: () => {},
    signedOut: async (message) => { log.push(['signedOut', message]); store.dispatch({ type: 'signedOut' }); },
  });
  return { store, api, log, sync };
}

describe('Sync.reconcile', () => {
  it('loads the agent and the active call into the state, then follows the room', async () => {
    const { store, log, sync } = setup({
      '/api/me': () => meAnswer({ activeCallId: 'c1' }),
      '/api/calls/c1': () => ({ call: call() }),
    });
    await sync.reconcile();
    assert.equal(store.state.call.session_id, 'c1');
    assert.equal(store.state.view.phase, 'with-customer');
    assert.deepEqual(log, [['hidePageError'], ['follow', 'call_c1']]);
  });

  it('without an active call the state is idle and the call is not asked for', async () => {
    const { store, api, sync } = setup({ '/api/me': () => meAnswer() });
    await sync.reconcile();
    assert.equal(store.state.view.phase, 'idle');
    assert.deepEqual(api.calls, ['/api/me']);
  });

  it('calls made while reading share the run, which reads once more', async () => {
    const { api, sync } = setup({ '/api/me': () => meAnswer() });
    const first = sync.reconcile();
    const second = sync.reconcile();
    const third = sync.reconcile();
    assert.equal(first, second);
    assert.equal(second, third);
    await first;
    assert.deepEqual(api.calls, ['/api/me', '/api/me']);
  });

  it('an event during the read makes the snapshot stale: it is read again before being applied', async () => {
    let reads = 0;
    const holder = {};
    holder.setup = setup({
      '/api/me': () => {
        reads += 1;
        if (reads === 1) holder.setup.sync.onEvent('agent_left', { agent_id: 'bob' });
        return meAnswer({ activeCallId: reads === 1 ? 'old' : null });
      },
      '/api/calls/old': () => ({ call: call({ session_id: 'old' }) }),
    });
    const { api, log, sync, store } = holder.setup;
    await sync.reconcile();
    assert.deepEqual(api.calls, ['/api/me', '/api/calls/old', '/api/me']);
    assert.equal(store.state.call, null);
    assert.equal(log.filter(([what]) => what === 'follow').length, 1);
  });

  it('the room asking for a fresh read reads again', async () => {
    let asks = 0;
    const { api, sync } = setup({ '/api/me': () => meAnswer() }, { follow: async () => { asks += 1; return asks === 1; } });
    await sync.reconcile();
    assert.equal(api.calls.length, 2);
  });

  it('a 401 signs out; another failure shows the page error and keeps the state', async () => {
    const expired = setup({ '/api/me': () => { throw new ApiError(401, 'unauthorized', 'no'); } });
    await expired.sync.reconcile();
    assert.deepEqual(expired.log, [['signedOut', 'Your session has ended. Sign in again.']]);
    assert.equal(expired.store.state.me, null);

    const down = setup({ '/api/me': () => { throw new ApiError(503, 'db_unavailable', 'Try again.'); } });
    await down.sync.reconcile();
    assert.deepEqual(down.log, [['pageError', 'Your calls could not be loaded: Try again.']]);
    assert.equal(down.store.state.me.id, ALICE.id);
  });

  it('does nothing when nobody is signed in', async () => {
    const { store, api, sync } = setup({ '/api/me': () => meAnswer() });
    store.dispatch({ type: 'signedOut' });
    await sync.reconcile();
    assert.deepEqual(api.calls, []);
  });

  it('loads the agents and the teams into the state', async () => {
    const billing = { id: 'billing', name: 'Billing', available: 2 };
    const { store, sync } = setup({ '/api/agents': () => ({ agents: [ALICE] }), '/api/teams': () => ({ teams: [billing] }) });
    await sync.loadAgents();
    assert.deepEqual(store.state.agents, [ALICE]);
    assert.deepEqual(store.state.teams, [billing]);
  });
});
