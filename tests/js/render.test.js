import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { TRANSFER_STATUSES } from '../../static/js/lib/protocol.js';
import { transferStatus, transferTarget } from '../../static/js/console/render.js';
import { callClock } from '../../static/js/console/screen.js';
import { call, transfer } from './fixtures.js';

const names = { bob: 'Bob' };
const nameOf = (id) => names[id] ?? id;

describe('transferTarget', () => {
  const teamName = (id) => ({ billing: 'Billing' }[id] ?? id);
  it('names the team until a member takes it, then that member', () => {
    assert.equal(transferTarget(transfer({ to_agent_id: null, to_team: 'billing' }), nameOf, teamName), 'team Billing');
    assert.equal(transferTarget(transfer({ to_agent_id: 'bob', to_team: 'billing' }), nameOf, teamName), 'Bob');
    assert.equal(transferTarget(transfer({ to_agent_id: null, to_phone: '+14155550100' }), nameOf, teamName), '+14155550100');
    const [, text] = transferStatus(transfer({ status: 'ringing', to_agent_id: null, to_team: 'billing' }), nameOf, teamName);
    assert.equal(text, 'Ringing: waiting for team Billing to answer. The customer is on hold.');
  });
});

describe('transferStatus (the transfer panel\'s line)', () => {
  it('is empty without a transfer', () => {
    assert.deepEqual(transferStatus(null, nameOf), ['none', '']);
  });

  it('says what is happening while the transfer is open', () => {
    assert.deepEqual(transferStatus(transfer({ status: 'pending' }), nameOf), ['pending', 'Starting…: waiting for Bob to answer. The customer is on hold.']);
    assert.deepEqual(transferStatus(transfer({ status: 'ringing' }), nameOf), ['ringing', 'Ringing: waiting for Bob to answer. The customer is on hold.']);
    assert.equal(transferStatus(transfer({ status: 'briefing' }), nameOf)[1], 'Briefing: you and Bob are in the private transfer room. The customer is on hold and cannot hear you.');
    assert.deepEqual(transferStatus(transfer({ status: 'completed' }), nameOf), ['completed', 'Completed: Bob has the customer.']);
  });

  it('names a phone target by its number, and an outcome with its reason and code', () => {
    const t = transfer({ to_agent_id: null, to_phone: '+14155550100', status: 'busy', reason: 'Line busy.', error_code: 486 });
    assert.deepEqual(transferStatus(t, nameOf), ['busy', 'Busy: transfer to +14155550100 did not happen. Line busy. (code 486)']);
  });

  for (const [status, label] of [['cancelled', 'Cancelled'], ['declined', 'Declined'], ['no_answer', 'No answer'], ['failed', 'Failed'], ['caller_left', 'Caller left'], ['agent_a_left', 'Agent A left'], ['new_outcome', 'new_outcome']]) {
    it(`labels ${status} as "${label}"`, () => {
      assert.deepEqual(transferStatus(transfer({ status }), nameOf), [status, `${label}: transfer to Bob did not happen.`]);
    });
  }
});

describe('transferStatus labels', () => {
  it('label every transfer status of the wire contract in words', () => {
    for (const status of TRANSFER_STATUSES) {
      const [, text] = transferStatus(transfer({ status }), nameOf);
      assert.doesNotMatch(text.split(':')[0], /_|^[a-z]/, status);
    }
  });
});

describe('callClock (the call timer)', () => {
  it('counts from the answer, else the assignment', () => {
    assert.deepEqual(callClock('with-customer', call(), null, 'alice'), ['2024-05-01T10:00:05Z', 'Call time']);
    assert.deepEqual(callClock('transfer-out', call({ answered_at: null }), null, 'alice'), ['2024-05-01T10:00:00Z', 'Call time']);
  });

  it('counts Agent B\'s briefing from when B answered', () => {
    assert.deepEqual(callClock('briefing-in', call(), transfer({ answered_at: 'TB' }), 'bob'), ['TB', 'Briefing time']);
  });

  it('counts a handed-over call from when the new owner reached the customer, else the hand-over', () => {
    const bridged = call({ agent_id: 'bob', transfers: [transfer({ status: 'completed', bridged_at: 'TBR', handed_over_at: 'THO' })] });
    assert.deepEqual(callClock('with-customer', bridged, null, 'bob'), ['TBR', 'Call time']);
    const handed = call({ agent_id: 'bob', transfers: [transfer({ status: 'completed', handed_over_at: 'THO' })] });
    assert.deepEqual(callClock('with-customer', handed, null, 'bob'), ['THO', 'Call time']);
    assert.deepEqual(callClock('handed-off', handed, null, 'alice'), ['2024-05-01T10:00:05Z', 'Call time']);
  });
});
