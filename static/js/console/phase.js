// Which phase an agent is in for a call, and which LiveKit room they belong in: the same rules
// the server applies in POST /api/token (app/services/calls.py, agent_room).

import { CALL_FINAL_STATUSES, TRANSFER_OPEN_STATUSES } from '../lib/protocol.js';

const OPEN_TRANSFER = new Set(TRANSFER_OPEN_STATUSES);
const CALL_OVER = new Set(CALL_FINAL_STATUSES);

/**
 * idle          no call
 * with-customer this agent owns the call and talks to the customer (call room)
 * transfer-out  this agent started an open transfer (transfer room; customer on hold)
 * briefing-in   this agent accepted a transfer and is being briefed (transfer room)
 * handed-off    this agent's transfer completed; they have not left the call yet (no room)
 */
export function derivePhase(call, me) {
  if (!call || CALL_OVER.has(call.status)) return { phase: 'idle', transfer: null, room: null };
  const open = call.transfers.find((t) => OPEN_TRANSFER.has(t.status));
  if (open && open.from_agent_id === me) return { phase: 'transfer-out', transfer: open, room: open.transfer_room };
  if (open && open.to_agent_id === me && open.status === 'briefing') return { phase: 'briefing-in', transfer: open, room: open.transfer_room };
  if (call.agent_id === me) return { phase: 'with-customer', transfer: null, room: call.room_name };
  return { phase: 'handed-off', transfer: null, room: null };
}
