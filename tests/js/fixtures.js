// Data shaped like the API's answers, for the console's unit tests.

export const ALICE = { id: 'alice', name: 'Alice', presence: 'available' };
export const BOB = { id: 'bob', name: 'Bob', presence: 'available' };

export function meAnswer({ agent = ALICE, pending = [], lastEventId = 7, activeCallId = null } = {}) {
  return {
    agent: { ...agent, active_call_id: activeCallId },
    csrf_token: `csrf-${agent.id}`,
    pending_transfers: pending,
    last_event_id: lastEventId,
  };
}

export function transfer(fields = {}) {
  return {
    id: 't1',
    from_agent_id: 'alice',
    to_agent_id: 'bob',
    to_phone: null,
    status: 'ringing',
    transfer_room: 'transfer_c1_t1',
    ...fields,
  };
}

export function call(fields = {}) {
  return {
    session_id: 'c1',
    customer_name: 'Jane Doe',
    caller_number: null,
    channel: 'web',
    status: 'active',
    agent_id: 'alice',
    room_name: 'call_c1',
    assigned_at: '2024-05-01T10:00:00Z',
    answered_at: '2024-05-01T10:00:05Z',
    transfers: [],
    context: [],
    timeline: [],
    summary: null,
    ...fields,
  };
}
