import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EVENT_TYPES } from '../../static/js/lib/protocol.js';
import { callLine, duration, recordingView, timelineText, transferLine, when } from '../../static/js/console/history.js';

const names = { alice: 'Alice', bob: 'Bob' };
const nameOf = (id) => names[id] ?? id;

describe('Recent calls wording', () => {
  it('a list line says who, how and why the call ended', () => {
    assert.equal(callLine({ customer_name: 'Jane', channel: 'phone', end_reason: 'customer_hung_up' }), 'Jane · Phone · the customer hung up');
    assert.equal(callLine({ customer_name: 'Wendy', channel: 'web', end_reason: 'some_new_reason' }), 'Wendy · Web · some new reason');
    assert.equal(callLine({ customer_name: 'Wendy', channel: 'web', end_reason: null }), 'Wendy · Web · ended');
  });

  it('a line about us starts with a capital', () => {
    const me = (id) => (id === 'alice' ? 'you' : nameOf(id));
    assert.equal(transferLine({ from_agent_id: 'alice', to_agent_id: 'bob', status: 'completed' }, me), 'You → Bob: Completed.');
    assert.equal(timelineText({ type: 'call_active', payload: { agent_id: 'alice' } }, me), 'You joined');
  });

  it('a recording plays from the app, only once Twilio has made it, and says when there is none', () => {
    const phone = { session_id: 'c/1', channel: 'phone' };
    assert.deepEqual(recordingView({ ...phone, recording: { status: 'completed', duration_s: 125, channels: 2 } }),
      { src: '/api/calls/c%2F1/recording', text: '2:05 · caller and agents on separate channels' });
    assert.equal(recordingView({ ...phone, recording: { status: 'in-progress', duration_s: null, channels: null } }).src, null);
    assert.match(recordingView({ ...phone, recording: { status: 'absent', duration_s: 0, channels: 2 } }).text, /too short or silent/);
    assert.deepEqual(recordingView({ ...phone, recording: null }), { src: null, text: 'This call was not recorded.' });
    assert.deepEqual(recordingView({ session_id: 'w', channel: 'web', recording: null }), { src: null, text: 'Web calls are not recorded.' });
    assert.equal(duration(59.6), '1:00');
    assert.equal(duration(null), '0:00');
  });

  it('a transfer line names both agents (or the number) and the outcome with its reason', () => {
    assert.equal(transferLine({ from_agent_id: 'alice', to_agent_id: 'bob', status: 'completed' }, nameOf), 'Alice → Bob: Completed.');
    assert.equal(transferLine({ from_agent_id: 'alice', to_agent_id: null, to_phone: '+14155550100', status: 'declined', reason: 'Busy with a customer.' }, nameOf),
      'Alice → +14155550100: Declined. Busy with a customer.');
  });

  it('every event type the server sends reads as words, never as an empty line', () => {
    for (const type of EVENT_TYPES) {
      const text = timelineText({ type, payload: { agent_id: 'bob', from_agent_id: 'alice', to_agent_id: 'bob', outcome: 'declined', reason: 'x' } }, nameOf);
      assert.ok(text && !text.includes('undefined'), `${type}: ${text}`);
    }
    assert.equal(timelineText({ type: 'transfer_completed', payload: { to_agent_id: 'bob' } }, nameOf), 'Transfer completed to Bob');
    assert.equal(timelineText({ type: 'call_ended', payload: { reason: 'agent_ended' } }, nameOf), 'Call ended (ended by the agent)');
    assert.equal(timelineText({ type: 'supervision_started', payload: { supervisor_id: 'sue', mode: 'monitor' } }, nameOf), 'Sue started monitoring');
    assert.equal(timelineText({ type: 'supervision_ended', payload: { supervisor_id: 'sue', mode: 'barge', reason: 'left' } }, nameOf),
      'Sue stopped taking part (barge-in)');
  });

  it('today\'s calls show the time alone, older ones the date too, a missing time nothing', () => {
    const now = new Date('2026-03-12T15:00:00');
    assert.ok(!when('2026-03-12T14:03:27', now).includes(','));
    assert.ok(when('2026-03-10T14:03:27', now).includes(','));
    assert.equal(when(null, now), '');
  });
});
