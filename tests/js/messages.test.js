import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  afterMicrophoneFailed, audioText, callEndedAlert, callHeading, feedText, idleText, missedCallAlert, newCallAlert,
  outcomeWord, sessionEndedMessage, transferCompletedAlert, transferEndedAlert,
} from '../../static/js/console/messages.js';

describe('transfer outcomes', () => {
  it('are worded to fit "The transfer was …"', () => {
    assert.equal(outcomeWord('declined'), 'declined');
    assert.equal(outcomeWord('cancelled'), 'cancelled');
    assert.equal(outcomeWord('no_answer'), 'not answered');
    assert.equal(outcomeWord('busy'), 'busy');
    assert.equal(outcomeWord('failed'), 'failed');
    assert.equal(outcomeWord('caller_left'), 'ended: the caller hung up');
    assert.equal(outcomeWord('agent_a_left'), 'ended: Agent A left');
    assert.equal(outcomeWord('something_new'), 'something_new');
  });

  it('tell Agent B and Agent A apart', () => {
    assert.equal(transferEndedAlert({ outcome: 'no_answer' }, true), 'The transfer was not answered.');
    assert.equal(transferEndedAlert({ outcome: 'declined', reason: 'In a meeting.' }, true), 'The transfer was declined. In a meeting.');
    assert.equal(transferEndedAlert({ outcome: 'agent_a_left', handed_over: true }, true), 'Agent A left during the briefing: you now have the customer.');
    assert.equal(transferEndedAlert({ outcome: 'busy' }, false), 'Transfer busy. You are back with the customer.');
    assert.equal(transferEndedAlert({ outcome: 'failed', reason: 'No route.' }, false), 'Transfer failed. No route. You are back with the customer.');
    assert.equal(transferEndedAlert({ outcome: 'caller_left' }, false), 'The transfer ended: the caller hung up.');
  });

  it('completion names who has the customer', () => {
    assert.equal(transferCompletedAlert(null), 'Transfer complete: you now have the customer.');
    assert.equal(transferCompletedAlert('Bob'), 'Transfer completed: Bob has the customer.');
  });
});

describe('call messages', () => {
  it('a new call names the caller and the number when known', () => {
    assert.equal(newCallAlert({ customer_name: 'Jane Doe' }), 'New call from Jane Doe. Joining automatically.');
    assert.equal(newCallAlert({ customer_name: 'Jane Doe', caller_number: '+1415' }), 'New call from Jane Doe (+1415). Joining automatically.');
  });

  it('a missed call says the server\'s reason and how to become available', () => {
    assert.equal(missedCallAlert({ reason: 'Not joined.' }, null), 'Missed call: Not joined. Choose “Available” when you are ready for calls again.');
    assert.match(missedCallAlert({ reason: 'Not joined.' }, 'Jane'), /^Missed call from Jane: /);
  });

  it('an ended call says why: the SIP detail first, then the known reasons, else the code', () => {
    assert.equal(callEndedAlert('Jane', { reason: 'customer_hung_up' }), 'The call with Jane ended (the customer hung up).');
    assert.equal(callEndedAlert('Jane', { reason: 'agent_ended' }), 'The call with Jane ended (ended by the agent).');
    assert.equal(callEndedAlert('Jane', { reason: 'customer_left' }), 'The call with Jane ended (the customer did not reconnect in time).');
    assert.equal(callEndedAlert('Jane', { reason: 'room_finished' }), 'The call with Jane ended (the call room closed).');
    assert.equal(callEndedAlert('Jane', { reason: 'agent_b_hung_up' }), 'The call with Jane ended (the agent hung up).');
    assert.equal(callEndedAlert('Jane', { reason: 'bridge_failed', detail: '486 Busy Here' }), 'The call with Jane ended (486 Busy Here).');
    assert.equal(callEndedAlert('Jane', { reason: 'odd' }), 'The call with Jane ended (odd).');
  });

  it('after a microphone failure the outcome is told', () => {
    assert.equal(afterMicrophoneFailed({ outcome: 'declined' }), 'The transfer has been declined');
    assert.equal(afterMicrophoneFailed({ outcome: 'left' }), 'You have left the call');
    assert.equal(afterMicrophoneFailed({ outcome: 'requeued', status: 'queued' }), 'The caller is on hold until another agent is free');
    assert.equal(afterMicrophoneFailed({ outcome: 'requeued', status: 'ringing' }), 'The call has been passed to another agent');
  });
});

describe('status lines', () => {
  it('a session that ended says why; unknown reasons read as unauthorized', () => {
    assert.equal(sessionEndedMessage('logged_out'), 'You were signed out (in another tab or window). Sign in again.');
    assert.equal(sessionEndedMessage('expired'), 'Your session expired. Sign in again.');
    assert.equal(sessionEndedMessage('unauthorized'), 'Your session has ended. Sign in again.');
    assert.equal(sessionEndedMessage('weird'), 'Your session has ended. Sign in again.');
  });

  it('the idle text follows the page and the presence', () => {
    assert.match(idleText('agent', 'available'), /^Waiting for calls\./);
    assert.match(idleText('agent-b', 'available'), /^Waiting for transfers\./);
    assert.match(idleText('agent-b', 'away'), /^You are away: /);
    assert.match(idleText('agent', undefined), /^Waiting for calls\./);
  });

  it('headings per phase', () => {
    assert.deepEqual(callHeading('with-customer', null, ''), ['Customer Call Active', 'You are talking with the customer.']);
    assert.equal(callHeading('transfer-out', { status: 'ringing' }, 'Bob')[0], 'Calling Bob…');
    assert.equal(callHeading('transfer-out', { status: 'briefing' }, 'Bob')[0], 'Briefing Bob');
    assert.equal(callHeading('briefing-in', { status: 'briefing' }, 'Alice')[0], 'Briefing with Alice');
    assert.equal(callHeading('handed-off', null, '')[0], 'Transfer completed');
  });

  it('the feed line', () => {
    assert.equal(feedText('connecting'), 'Updates: connecting…');
    assert.equal(feedText('sse'), 'Updates: live');
    assert.equal(feedText('polling'), 'Updates: checking every 2 s (live channel unavailable)');
    assert.equal(feedText('off'), 'off');
  });

  it('the audio line names the room kind and who is there', () => {
    const at = (state, roomName, people = []) => ({ state, roomName, people });
    assert.equal(audioText(at('connecting', 'call_c1'), false, true), 'Connecting to the customer room…');
    assert.equal(audioText(at('connecting', 'transfer_c1_t1'), false, true), 'Connecting to the private transfer room…');
    assert.equal(audioText(at('connected', 'call_c1', ['Jane (customer)']), false, true), 'Connected, customer room, with Jane (customer)');
    assert.equal(audioText(at('connected', 'transfer_c1_t1'), false, true), 'Connected, private transfer room, nobody else here yet');
    assert.equal(audioText(at('reconnecting', 'call_c1'), false, true), 'Reconnecting…');
    assert.equal(audioText(at('failed', 'call_c1'), true, true), 'Not connected; retrying automatically');
    assert.equal(audioText(at('disconnected', 'call_c1'), false, true), 'Not connected');
    assert.equal(audioText(at('idle', null), false, true), 'Joining…');
    assert.equal(audioText(at('idle', null), false, false), 'Not in a room');
  });
});

describe('wording covers the wire contract', () => {
  it('every way a transfer can end has words, not its code', async () => {
    const { TRANSFER_OPEN_STATUSES, TRANSFER_STATUSES } = await import('../../static/js/lib/protocol.js');
    const ended = TRANSFER_STATUSES.filter((s) => !TRANSFER_OPEN_STATUSES.includes(s) && s !== 'completed');
    assert.ok(ended.length >= 7, `expected the ended outcomes, got ${ended}`);
    for (const outcome of ended) {
      assert.match(transferEndedAlert({ outcome }, true), /^The transfer was [a-z]/, outcome);
      assert.doesNotMatch(transferEndedAlert({ outcome }, true), /_/, outcome);
    }
  });
});
