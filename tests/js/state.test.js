import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Store, customerAwayFrom, initialState, nameOf, reduce } from '../../static/js/console/state.js';
import { ALICE, BOB, call, meAnswer, transfer } from './fixtures.js';

/** Run actions from the initial state; the last result's state and effects. */
function run(...actions) {
  let state = initialState();
  let effects = [];
  for (const action of actions) ({ state, effects } = reduce(state, action));
  return { state, effects };
}

const signedIn = (agent = ALICE) => ({ type: 'signedIn', me: meAnswer({ agent }) });
const snapshot = (c, incoming = null) => ({ type: 'snapshot', call: c, incoming });
const event = (type, data) => ({ type: 'event', event: type, data });
const kinds = (effects) => effects.map((e) => e.kind);
const texts = (effects) => effects.filter((e) => e.text).map((e) => e.text);

describe('session actions', () => {
  it('signing in takes the agent, the CSRF token and the first ringing transfer', () => {
    const ringing = { transfer_id: 't9', session_id: 'c9' };
    const { state, effects } = run({ type: 'signedIn', me: meAnswer({ pending: [ringing, { transfer_id: 't10' }] }) });
    assert.equal(state.me.id, 'alice');
    assert.equal(state.me.name, 'Alice');
    assert.equal(state.csrf, 'csrf-alice');
    assert.equal(state.incoming, ringing);
    assert.deepEqual(kinds(effects), ['render', 'refreshHistory']);
  });

  it('signing out forgets the agent, the call and the incoming transfer, and renders nothing yet', () => {
    const { state, effects } = run(signedIn(), snapshot(call(), { transfer_id: 't2' }), { type: 'signedOut' });
    assert.equal(state.me, null);
    assert.equal(state.csrf, null);
    assert.equal(state.call, null);
    assert.equal(state.incoming, null);
    assert.equal(state.view.phase, 'idle');
    assert.deepEqual(effects, []);
  });

  it('a re-read /api/me keeps what is known of the agent and refreshes the token', () => {
    const { state } = run(signedIn(), { type: 'me', me: { ...meAnswer({ agent: { id: 'alice', presence: 'away' } }), csrf_token: 'fresh' } });
    assert.equal(state.me.name, 'Alice');
    assert.equal(state.me.presence, 'away');
    assert.equal(state.csrf, 'fresh');
  });

  it('never changes the state it was given', () => {
    const before = run(signedIn(), snapshot(call({ transfers: [transfer()] }))).state;
    const frozenTransfers = JSON.stringify(before.call);
    reduce(before, event('transfer_accepted', { session_id: 'c1', transfer_id: 't1', to_agent_id: 'bob' }));
    reduce(before, event('context_added', { session_id: 'c1', entry: { id: 5, text: 'x' } }));
    assert.equal(JSON.stringify(before.call), frozenTransfers);
    assert.equal(before.entries.size, 0);
  });

  it('refuses an unknown action', () => {
    assert.throws(() => reduce(initialState(), { type: 'nonsense' }), /unknown console action nonsense/);
  });
});

describe('snapshot (the server state)', () => {
  it('derives the phase and room, and collects the context entries', () => {
    const c = call({ context: [{ id: 2, text: 'b' }, { id: 1, text: 'a' }] });
    const { state, effects } = run(signedIn(), snapshot(c));
    assert.equal(state.view.phase, 'with-customer');
    assert.equal(state.view.room, 'call_c1');
    assert.deepEqual([...state.entries.keys()], [2, 1]);
    assert.deepEqual(kinds(effects), ['callChanged', 'render']);
  });

  it('keeps entries added by events for the same call, and drops them for another call', () => {
    const same = run(signedIn(), snapshot(call()), { type: 'contextAdded', entry: { id: 9 } }, snapshot(call({ context: [{ id: 1 }] })));
    assert.deepEqual([...same.state.entries.keys()].sort(), [1, 9]);
    assert.deepEqual(kinds(same.effects), ['render']);
    const other = run(signedIn(), snapshot(call()), { type: 'contextAdded', entry: { id: 9 } }, snapshot(call({ session_id: 'c2' })));
    assert.deepEqual([...other.state.entries.keys()], []);
    assert.deepEqual(kinds(other.effects), ['callChanged', 'render', 'refreshHistory']);
  });

  it('asks "Recent calls" to read again when a call leaves the screen, not when one arrives', () => {
    assert.deepEqual(kinds(run(signedIn(), snapshot(call())).effects), ['callChanged', 'render']);
    assert.deepEqual(kinds(run(signedIn(), snapshot(call()), snapshot(null)).effects), ['callChanged', 'render', 'refreshHistory']);
  });

  it('no call: idle, no room', () => {
    const { state } = run(signedIn(), snapshot(call()), snapshot(null));
    assert.deepEqual(state.view, { phase: 'idle', transfer: null, room: null });
    assert.equal(state.customerAway, null);
  });

  it('reads a dropped web customer from the timeline', () => {
    const timeline = [
      { type: 'customer_presence', created_at: 'T1', payload: { present: false, grace_s: 30 } },
      { type: 'call_active', created_at: 'T2', payload: {} },
    ];
    assert.deepEqual(run(signedIn(), snapshot(call({ timeline }))).state.customerAway, { session_id: 'c1', since: 'T1', grace_s: 30 });
  });
});

describe('customerAwayFrom', () => {
  it('is null without a call, without presence events, or when the customer came back', () => {
    assert.equal(customerAwayFrom(null), null);
    assert.equal(customerAwayFrom(call()), null);
    const timeline = [
      { type: 'customer_presence', created_at: 'T1', payload: { present: false, grace_s: 30 } },
      { type: 'customer_presence', created_at: 'T2', payload: { present: true } },
    ];
    assert.equal(customerAwayFrom(call({ timeline })), null);
  });

  it('takes the last presence event', () => {
    const timeline = [
      { type: 'customer_presence', created_at: 'T1', payload: { present: true } },
      { type: 'customer_presence', created_at: 'T2', payload: { present: false, grace_s: 12 } },
    ];
    assert.deepEqual(customerAwayFrom(call({ timeline })), { session_id: 'c1', since: 'T2', grace_s: 12 });
  });
});

describe('nameOf', () => {
  const state = { ...initialState(), me: ALICE, agents: [ALICE, BOB] };
  it('says "you", the agent\'s name, the id when unknown, and "unknown agent" without an id', () => {
    assert.equal(nameOf(state, 'alice'), 'you');
    assert.equal(nameOf(state, 'bob'), 'Bob');
    assert.equal(nameOf(state, 'carol'), 'carol');
    assert.equal(nameOf(state, null), 'unknown agent');
    assert.equal(nameOf(initialState(), 'alice'), 'alice');
  });
});

describe('local actions', () => {
  it('a started transfer is ours at once: transfer-out in the transfer room', () => {
    const { state, effects } = run(signedIn(), snapshot(call()), { type: 'transferStarted', transfer: transfer({ status: 'pending' }) });
    assert.equal(state.view.phase, 'transfer-out');
    assert.equal(state.view.room, 'transfer_c1_t1');
    assert.equal(state.call.transfers.length, 1);
    assert.deepEqual(kinds(effects), ['render']);
  });

  it('presence updates the agent; agents and context render only their part', () => {
    assert.equal(run(signedIn(), { type: 'presence', agent: { presence: 'away' } }).state.me.presence, 'away');
    const agents = run(signedIn(), { type: 'agents', agents: [BOB] });
    assert.deepEqual(agents.state.agents, [BOB]);
    assert.deepEqual(kinds(agents.effects), ['renderAgents']);
    assert.deepEqual(kinds(run(signedIn(), { type: 'contextAdded', entry: { id: 3 } }).effects), ['renderContext']);
  });

  it('incomingDone clears only the named transfer, and renders only when asked', () => {
    const ringing = { type: 'event', event: 'transfer_requested', data: { transfer_id: 't5', session_id: 'c5', customer_name: 'Eve', from_agent_name: 'Alice' } };
    assert.notEqual(run(signedIn(BOB), ringing, { type: 'incomingDone', transferId: 'other' }).state.incoming, null);
    const done = run(signedIn(BOB), ringing, { type: 'incomingDone', transferId: 't5', render: true });
    assert.equal(done.state.incoming, null);
    assert.deepEqual(kinds(done.effects), ['render']);
    const accepted = run(signedIn(BOB), ringing, { type: 'incomingDone' });
    assert.equal(accepted.state.incoming, null);
    assert.deepEqual(accepted.effects, []);
  });

  it('cleared forgets what is shown', () => {
    const timeline = [{ type: 'customer_presence', created_at: 'T1', payload: { present: false } }];
    const { state, effects } = run(signedIn(), snapshot(call({ context: [{ id: 1 }], timeline }), { transfer_id: 't' }), { type: 'cleared' });
    assert.equal(state.incoming, null);
    assert.equal(state.customerAway, null);
    assert.equal(state.entries.size, 0);
    assert.deepEqual(kinds(effects), ['callChanged', 'render']);
  });
});

describe('events', () => {
  const withCall = (c = call()) => [signedIn(), snapshot(c)];

  it('every event but presence and context renders, then reconciles', () => {
    for (const type of ['call_assigned', 'call_queued', 'call_active', 'summary_ready', 'transfer_bridged', 'agent_left']) {
      const { effects } = run(...withCall(), event(type, { session_id: 'c1', agent_id: 'alice' }));
      assert.deepEqual(kinds(effects).slice(-2), ['render', 'reconcile'], type);
    }
  });

  it('call_assigned alerts (fading) with the caller and chimes', () => {
    const { effects } = run(signedIn(), event('call_assigned', { customer_name: 'Jane Doe', caller_number: '+14155550100' }));
    assert.deepEqual(effects[0], { kind: 'alert', text: 'New call from Jane Doe (+14155550100). Joining automatically.', sticky: false });
    assert.deepEqual(kinds(effects), ['alert', 'chime', 'render', 'reconcile']);
  });

  it('call_missed alerts (sticky), naming the customer only for the call on screen', () => {
    const here = run(...withCall(), event('call_missed', { session_id: 'c1', reason: 'Not joined within 5 seconds; you are now set to away.' }));
    assert.equal(here.effects[0].text, 'Missed call from Jane Doe: Not joined within 5 seconds; you are now set to away. Choose “Available” when you are ready for calls again.');
    assert.equal(here.effects[0].sticky, true);
    const elsewhere = run(...withCall(), event('call_missed', { session_id: 'c2', reason: 'R.' }));
    assert.match(elsewhere.effects[0].text, /^Missed call: R\. /);
  });

  it('call_missed for a microphone failure already reported says nothing more', () => {
    const data = { session_id: 'c1', reason: 'R.', microphone_error: 'denied' };
    const reported = run(...withCall(), { type: 'micReported', sessionId: 'c1' }, event('call_missed', data));
    assert.deepEqual(kinds(reported.effects), ['render', 'reconcile']);
    const notReported = run(...withCall(), event('call_missed', data));
    assert.deepEqual(kinds(notReported.effects), ['alert', 'render', 'reconcile']);
  });

  it('customer_presence: dropped, then back; ignored for another call; never reconciles', () => {
    const dropped = run(...withCall(), event('customer_presence', { session_id: 'c1', present: false, created_at: 'T1', grace_s: 30 }));
    assert.deepEqual(dropped.state.customerAway, { session_id: 'c1', since: 'T1', grace_s: 30 });
    assert.deepEqual(dropped.effects, [
      { kind: 'notice', text: "Jane Doe's connection dropped; waiting for them to reconnect.", level: 'alert' },
      { kind: 'render' },
    ]);
    const back = reduce(dropped.state, event('customer_presence', { session_id: 'c1', present: true }));
    assert.equal(back.state.customerAway, null);
    assert.deepEqual(back.effects, [{ kind: 'notice', text: 'Jane Doe is back on the call.', level: 'info' }, { kind: 'render' }]);
    const backAgain = reduce(back.state, event('customer_presence', { session_id: 'c1', present: true }));
    assert.deepEqual(kinds(backAgain.effects), ['render']);
    const other = run(...withCall(), event('customer_presence', { session_id: 'c2', present: false }));
    assert.equal(other.state.customerAway, null);
    assert.deepEqual(other.effects, []);
  });

  it('context_added adds the entry of the call on screen only', () => {
    const added = run(...withCall(), event('context_added', { session_id: 'c1', entry: { id: 4, text: 'hi' } }));
    assert.equal(added.state.entries.get(4).text, 'hi');
    assert.deepEqual(kinds(added.effects), ['renderContext']);
    const other = run(...withCall(), event('context_added', { session_id: 'c2', entry: { id: 4 } }));
    assert.equal(other.state.entries.size, 0);
    assert.deepEqual(other.effects, []);
  });

  it('transfer_requested shows the incoming transfer, hides a stale banner and chimes', () => {
    const data = { transfer_id: 't5', session_id: 'c5', customer_name: 'Eve', from_agent_id: 'alice', from_agent_name: 'Alice', summary: { text: 's' }, created_at: 'T5' };
    const { state, effects } = run(signedIn(BOB), event('transfer_requested', data));
    assert.deepEqual(state.incoming, {
      transfer_id: 't5', session_id: 'c5', customer_name: 'Eve', from_agent_id: 'alice', from_agent_name: 'Alice', summary: { text: 's' }, requested_at: 'T5',
    });
    assert.deepEqual(kinds(effects), ['notice', 'hideAlert', 'chime', 'render', 'reconcile']);
    assert.equal(effects[0].text, 'Incoming transfer: Eve, from Alice.');
  });

  it('a team transfer rings with its team, and clears with a message when another member takes it', () => {
    const data = { transfer_id: 't6', session_id: 'c6', customer_name: 'Eve', from_agent_id: 'alice', from_agent_name: 'Alice', to_team: 'billing', team_name: 'Billing', created_at: 'T6' };
    const ringing = run(signedIn(BOB), event('transfer_requested', data));
    assert.equal(ringing.state.incoming.to_team, 'billing');
    assert.equal(ringing.state.incoming.team_name, 'Billing');
    const other = reduce(ringing.state, event('transfer_taken', { transfer_id: 't9', to_team: 'billing', to_agent_id: 'carol', to_agent_name: 'Carol' }));
    assert.equal(other.state.incoming.transfer_id, 't6'); // another transfer: nothing to clear
    assert.deepEqual(kinds(other.effects), ['reconcile']);
    const taken = reduce(ringing.state, event('transfer_taken', { transfer_id: 't6', to_team: 'billing', to_agent_id: 'carol', to_agent_name: 'Carol' }));
    assert.equal(taken.state.incoming, null);
    assert.deepEqual(kinds(taken.effects), ['alert', 'render', 'reconcile']);
    assert.equal(taken.effects[0].text, 'Carol took the transfer of Eve; it is no longer offered to you.');
  });

  it('transfer_ringing for a team names the team', () => {
    const start = [...withCall(call({ transfers: [transfer({ status: 'pending', to_agent_id: null, to_team: 'billing' })] })),
      { type: 'teams', teams: [{ id: 'billing', name: 'Billing', available: 2 }] }];
    const ringing = run(...start, event('transfer_ringing', { session_id: 'c1', transfer_id: 't1', to_agent_id: null, to_phone: null, to_team: 'billing' }));
    assert.equal(ringing.effects[0].text, 'Ringing team Billing…');
  });

  it('transfer_ringing and transfer_accepted move Agent A\'s transfer on', () => {
    const start = [...withCall(call({ transfers: [transfer({ status: 'pending' })] })), { type: 'agents', agents: [ALICE, BOB] }];
    const ringing = run(...start, event('transfer_ringing', { session_id: 'c1', transfer_id: 't1', to_agent_id: 'bob' }));
    assert.equal(ringing.state.call.transfers[0].status, 'ringing');
    assert.equal(ringing.effects[0].text, 'Ringing Bob…');
    const accepted = reduce(ringing.state, event('transfer_accepted', { session_id: 'c1', transfer_id: 't1', to_agent_id: 'bob' }));
    assert.equal(accepted.state.view.phase, 'transfer-out');
    assert.equal(accepted.state.view.transfer.status, 'briefing');
    assert.deepEqual(accepted.effects[0], { kind: 'alert', text: 'Bob accepted. You are in the private transfer room; the customer is on hold.', sticky: false });
  });

  it('an event about an unknown transfer changes nothing', () => {
    const before = run(...withCall(call({ transfers: [transfer()] }))).state;
    const { state } = reduce(before, event('transfer_ringing', { session_id: 'c1', transfer_id: 'nope', to_agent_id: 'bob' }));
    assert.equal(state.call, before.call);
  });

  it('a declined transfer: Agent A is back with the customer', () => {
    const start = withCall(call({ transfers: [transfer({ status: 'ringing' })] }));
    const { state, effects } = run(...start, event('transfer_declined', { session_id: 'c1', transfer_id: 't1', outcome: 'declined', reason: 'Busy with another.', error_code: null }));
    assert.equal(state.view.phase, 'with-customer');
    assert.equal(state.call.transfers[0].status, 'declined');
    assert.equal(state.call.transfers[0].reason, 'Busy with another.');
    assert.deepEqual(effects[0], { kind: 'alert', text: 'Transfer declined. Busy with another. You are back with the customer.', sticky: true });
  });

  it('a cancelled transfer still ringing for Agent B: the incoming panel goes, B is told', () => {
    const data = { transfer_id: 't5', session_id: 'c5', customer_name: 'Eve', from_agent_name: 'Alice' };
    const { state, effects } = run(signedIn(BOB), event('transfer_requested', data), event('transfer_cancelled', { session_id: 'c5', transfer_id: 't5', outcome: 'cancelled' }));
    assert.equal(state.incoming, null);
    assert.equal(effects[0].text, 'The transfer was cancelled.');
  });

  it('Agent B in the briefing is told when Agent A left and B has the customer', () => {
    const t = transfer({ status: 'briefing' });
    const { effects } = run(signedIn(BOB), snapshot(call({ transfers: [t] })), event('transfer_failed', { session_id: 'c1', transfer_id: 't1', outcome: 'agent_a_left', handed_over: true }));
    assert.equal(effects[0].text, 'Agent A left during the briefing: you now have the customer.');
  });

  it('the caller hanging up during a transfer is told to Agent A as such', () => {
    const { effects } = run(...withCall(call({ transfers: [transfer()] })), event('transfer_failed', { session_id: 'c1', transfer_id: 't1', outcome: 'caller_left', reason: 'Gone.' }));
    assert.equal(effects[0].text, 'The transfer ended: the caller hung up. Gone.');
  });

  it('transfer_completed hands the call over: Agent A is handed-off, Agent B has the customer', () => {
    const briefing = call({ transfers: [transfer({ status: 'briefing' })] });
    const data = { session_id: 'c1', transfer_id: 't1', to_agent_id: 'bob' };
    const a = run(signedIn(), snapshot(briefing), { type: 'agents', agents: [BOB] }, event('transfer_completed', data));
    assert.equal(a.state.call.agent_id, 'bob');
    assert.equal(a.state.view.phase, 'handed-off');
    assert.equal(a.effects[0].text, 'Transfer completed: Bob has the customer.');
    const b = run(signedIn(BOB), snapshot(briefing), event('transfer_completed', data));
    assert.equal(b.state.view.phase, 'with-customer');
    assert.equal(b.effects[0].text, 'Transfer complete: you now have the customer.');
  });

  it('transfer_completed for another call leaves the call on screen alone', () => {
    const { state } = run(...withCall(), event('transfer_completed', { session_id: 'c9', transfer_id: 'tx', to_agent_id: 'bob' }));
    assert.equal(state.call.agent_id, 'alice');
  });

  it('call_ended says why, and clears the customer banner and an incoming transfer of that call', () => {
    const timeline = [{ type: 'customer_presence', created_at: 'T1', payload: { present: false } }];
    const ended = run(...withCall(call({ timeline })), event('call_ended', { session_id: 'c1', reason: 'customer_left' }));
    assert.equal(ended.state.customerAway, null);
    assert.deepEqual(ended.effects[0], { kind: 'alert', text: 'The call with Jane Doe ended (the customer did not reconnect in time).', sticky: true });
    const incoming = run(signedIn(BOB), event('transfer_requested', { transfer_id: 't5', session_id: 'c5' }), event('call_ended', { session_id: 'c5', reason: 'customer_hung_up' }));
    assert.equal(incoming.state.incoming, null);
    assert.deepEqual(kinds(incoming.effects), ['render', 'reconcile']);
  });

  it('agent_left is noticed for others, not for ourselves', () => {
    assert.equal(run(...withCall(), { type: 'agents', agents: [BOB] }, event('agent_left', { session_id: 'c1', agent_id: 'bob' })).effects[0].text, 'Bob left the call.');
    assert.deepEqual(kinds(run(...withCall(), event('agent_left', { session_id: 'c1', agent_id: 'alice' })).effects), ['render', 'reconcile']);
  });
});

describe('Store', () => {
  it('keeps the latest state and tells listeners the effects', () => {
    const store = new Store();
    const heard = [];
    store.subscribe((state, effects) => heard.push([state.me?.id, kinds(effects)]));
    const effects = store.dispatch(signedIn());
    assert.equal(store.state.me.id, 'alice');
    assert.deepEqual(kinds(effects), ['render', 'refreshHistory']);
    assert.deepEqual(heard, [['alice', ['render', 'refreshHistory']]]);
    assert.deepEqual(texts(store.dispatch(event('agent_left', { agent_id: 'bob' }))), ['bob left the call.']);
  });
});
