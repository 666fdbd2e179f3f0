import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { ApiError } from '../../static/js/lib/api.js';
import { RoomLink } from '../../static/js/console/room.js';
import { Store } from '../../static/js/console/state.js';
import { call, meAnswer, transfer } from './fixtures.js';

const links = [];
afterEach(() => { for (const link of links.splice(0)) link.cancelRetry(); });

/** A RoomLink over a fake audio and API; `token` answers POST /api/token. */
function setup({ token = async () => ({ livekit_url: 'ws://lk', token: 'tok', room_name: 'call_c1' }), joins = true, c = call() } = {}) {
  const store = new Store();
  store.dispatch({ type: 'signedIn', me: meAnswer() });
  if (c) store.dispatch({ type: 'snapshot', call: c, incoming: null });
  const log = [];
  const audio = {
    roomName: null,
    state: 'idle',
    async join(url, tok, roomName) { log.push(['join', url, tok, roomName]); return joins; },
    async leave() { log.push(['leave']); },
  };
  const api = {
    async post(path, body) {
      log.push(['post', path, body]);
      if (path === '/api/token') return token();
      return {};
    },
  };
  const notify = { pageError: (text) => log.push(['pageError', text]), alert: (text) => log.push(['alert', text]) };
  const link = new RoomLink({ api, audio, store, notify, reconcile: async () => log.push(['reconcile']), signedOut: async () => {}, onChange: () => log.push(['change']) });
  links.push(link);
  return { store, audio, log, link };
}

describe('RoomLink.follow', () => {
  it('joins the call room with a fresh token', async () => {
    const { log, link } = setup();
    assert.equal(await link.follow(), false);
    assert.deepEqual(log, [['post', '/api/token', { session_id: 'c1' }], ['join', 'ws://lk', 'tok', 'call_c1']]);
  });

  it('uses the grant an action already holds for that room, once', async () => {
    const c = call({ transfers: [transfer({ status: 'pending' })] });
    const { log, link } = setup({ c });
    link.offerGrant({ transfer: { transfer_room: 'transfer_c1_t1' }, token: 'granted', livekit_url: 'ws://lk' });
    await link.follow();
    assert.deepEqual(log, [['join', 'ws://lk', 'granted', 'transfer_c1_t1']]);
    assert.equal(link.pendingGrant, null);
  });

  it('leaves the room when the agent belongs in none', async () => {
    const { audio, log, link } = setup({ c: null });
    await link.follow();
    assert.deepEqual(log, []);
    audio.roomName = 'call_c1';
    await link.follow();
    assert.deepEqual(log, [['leave']]);
  });

  it('stays when already in (or on the way into) the room', async () => {
    const { audio, log, link } = setup();
    Object.assign(audio, { roomName: 'call_c1', state: 'reconnecting' });
    await link.follow();
    assert.deepEqual(log, []);
  });

  it('a refused token asks for a fresh read three times, then shows the page error', async () => {
    const { log, link } = setup({ token: async () => { throw new ApiError(403, 'forbidden', 'Not your call.'); } });
    assert.deepEqual([await link.follow(), await link.follow(), await link.follow(), await link.follow()], [true, true, true, false]);
    assert.deepEqual(log.at(-1), ['pageError', "The call's audio room could not be joined: Not your call."]);
    link.retryNow();
    assert.equal(link.tokenRefusals, 0);
    assert.deepEqual(log.at(-1), ['reconcile']);
  });

  it('an unreachable call service schedules a retry, shown in the status', async () => {
    const { log, link } = setup({ token: async () => { throw new ApiError(0, 'network', 'offline'); } });
    assert.equal(await link.follow(), false);
    assert.deepEqual(link.status(), { retrying: true, reason: 'offline' });
    assert.deepEqual(log.at(-1), ['change']);
    await link.follow(); // the retry is already scheduled: no second token request
    assert.equal(log.filter(([what]) => what === 'post').length, 1);
    link.cancelRetry();
    assert.deepEqual(link.status(), { retrying: false, reason: null });
  });

  it('a failed join is retried with growing delays', async () => {
    const { link } = setup({ joins: false });
    await link.follow();
    assert.equal(link.retry.attempt, 1);
    assert.equal(link.retry.room, 'call_c1');
  });
});

describe('RoomLink.microphoneFailed', () => {
  const problem = { reason: 'access to it is blocked in this browser' };

  it('reports once per call and says what became of it', async () => {
    const { store, log, link } = setup();
    link.api.post = async (path, body) => { log.push(['post', path, body]); return { outcome: 'requeued', status: 'queued' }; };
    await link.microphoneFailed({ roomName: 'call_c1', problem });
    await link.microphoneFailed({ roomName: 'call_c1', problem });
    assert.equal(store.state.micReportedFor, 'c1');
    assert.equal(log.filter(([what]) => what === 'post').length, 1);
    assert.match(log.find(([what]) => what === 'alert')[1], /^Your microphone is not working: access to it is blocked in this browser\. The caller is on hold until another agent is free; you are set to Away\./);
  });

  it('ignores a failure in a room the agent no longer belongs in', async () => {
    const { log, link } = setup();
    await link.microphoneFailed({ roomName: 'transfer_old', problem });
    assert.deepEqual(log, []);
  });

  it('may report again when the server did not hear it', async () => {
    const { store, log, link } = setup();
    link.api.post = async () => { throw new ApiError(0, 'network', 'offline'); };
    await link.microphoneFailed({ roomName: 'call_c1', problem });
    assert.equal(store.state.micReportedFor, null);
    assert.match(log.find(([what]) => what === 'alert')[1], /could not be passed to another agent \(offline\)/);
  });
});
