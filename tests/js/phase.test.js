import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { derivePhase } from '../../static/js/console/phase.js';
import { call, transfer } from './fixtures.js';

describe('derivePhase', () => {
  it('no call is idle', () => {
    assert.deepEqual(derivePhase(null, 'alice'), { phase: 'idle', transfer: null, room: null });
  });

  for (const status of ['completed', 'abandoned', 'failed']) {
    it(`a ${status} call is idle, even for its owner`, () => {
      assert.deepEqual(derivePhase(call({ status }), 'alice'), { phase: 'idle', transfer: null, room: null });
    });
  }

  for (const status of ['queued', 'ringing', 'active']) {
    it(`the owner of a ${status} call is with the customer in the call room`, () => {
      assert.deepEqual(derivePhase(call({ status }), 'alice'), { phase: 'with-customer', transfer: null, room: 'call_c1' });
    });
  }

  for (const status of ['pending', 'ringing', 'briefing']) {
    it(`Agent A with a ${status} transfer is in the transfer room`, () => {
      const t = transfer({ status });
      assert.deepEqual(derivePhase(call({ transfers: [t] }), 'alice'), { phase: 'transfer-out', transfer: t, room: 'transfer_c1_t1' });
    });
  }

  it('Agent B is briefed only once the transfer is in briefing', () => {
    const briefing = transfer({ status: 'briefing' });
    assert.deepEqual(derivePhase(call({ transfers: [briefing] }), 'bob'), { phase: 'briefing-in', transfer: briefing, room: 'transfer_c1_t1' });
    assert.equal(derivePhase(call({ transfers: [transfer({ status: 'ringing' })] }), 'bob').phase, 'handed-off');
  });

  for (const status of ['completed', 'declined', 'cancelled', 'no_answer', 'busy', 'failed', 'caller_left', 'agent_a_left']) {
    it(`a ${status} transfer is no longer open: the owner is with the customer`, () => {
      assert.equal(derivePhase(call({ transfers: [transfer({ status })] }), 'alice').phase, 'with-customer');
    });
  }

  it('after the hand-over the new owner is with the customer and the old one handed off, without a room', () => {
    const done = call({ agent_id: 'bob', transfers: [transfer({ status: 'completed' })] });
    assert.equal(derivePhase(done, 'bob').phase, 'with-customer');
    assert.deepEqual(derivePhase(done, 'alice'), { phase: 'handed-off', transfer: null, room: null });
  });

  it('the open transfer wins over earlier finished ones', () => {
    const open = transfer({ id: 't2', status: 'ringing', transfer_room: 'transfer_c1_t2' });
    const view = derivePhase(call({ transfers: [transfer({ status: 'declined' }), open] }), 'alice');
    assert.equal(view.transfer, open);
    assert.equal(view.room, 'transfer_c1_t2');
  });
});
