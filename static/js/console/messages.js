// What the console says, as pure functions of the server's data: alerts, notices and status
// lines. Kept apart from the DOM so the wording can be tested.

import { TRANSFER_OUTCOME_TEXT, isTransferRoom } from '../lib/protocol.js';

const ENDED_REASON = {
  customer_hung_up: 'the customer hung up',
  agent_ended: 'ended by the agent',
  customer_left: 'the customer did not reconnect in time',
  room_finished: 'the call room closed',
  agent_b_hung_up: 'the agent hung up',
};

export const SESSION_ENDED = {
  logged_out: 'You were signed out (in another tab or window). Sign in again.',
  expired: 'Your session expired. Sign in again.',
  unauthorized: 'Your session has ended. Sign in again.',
};

/** Why the session ended, from the feed's session_ended reason. */
export function sessionEndedMessage(reason) {
  return SESSION_ENDED[reason] ?? SESSION_ENDED.unauthorized;
}

/** How a transfer ended, inside a sentence ("The transfer was …"). */
export function outcomeWord(outcome) {
  return TRANSFER_OUTCOME_TEXT[outcome] ?? outcome;
}

export function newCallAlert({ customer_name: name, caller_number: number }) {
  return `New call from ${name}${number ? ` (${number})` : ''}. Joining automatically.`;
}

/** @param {string|null} customer  the missed call's customer, when it is the call on screen */
export function missedCallAlert({ reason }, customer) {
  const from = customer ? ` from ${customer}` : '';
  return `Missed call${from}: ${reason} Choose “Available” when you are ready for calls again.`;
}

export function customerBackNotice(customer) {
  return `${customer} is back on the call.`;
}

export function customerDroppedNotice(customer) {
  return `${customer}'s connection dropped; waiting for them to reconnect.`;
}

export function transferAcceptedAlert(agentB) {
  return `${agentB} accepted. You are in the private transfer room; the customer is on hold.`;
}

/** A team transfer this agent was offered went to another member of the team. */
export function transferTakenAlert(agentB, customer) {
  return `${agentB} took the transfer of ${customer}; it is no longer offered to you.`;
}

/** @param {string|null} agentB  who has the customer now; null when it is us */
export function transferCompletedAlert(agentB) {
  return agentB === null ? 'Transfer complete: you now have the customer.' : `Transfer completed: ${agentB} has the customer.`;
}

/** A transfer that did not happen (declined, cancelled, failed), told to Agent B or Agent A. */
export function transferEndedAlert(data, iAmB) {
  const word = outcomeWord(data.outcome);
  const reason = data.reason ? ` ${data.reason}` : '';
  if (iAmB) return data.handed_over ? 'Agent A left during the briefing: you now have the customer.' : `The transfer was ${word}.${reason}`;
  if (data.outcome === 'caller_left') return `The transfer ended: the caller hung up.${reason}`;
  return `Transfer ${word}.${reason} You are back with the customer.`;
}

/** A failed bridge into LiveKit comes with the SIP service's answer in words (`detail`). */
export function callEndedAlert(customer, { detail, reason }) {
  return `The call with ${customer} ended (${detail ?? ENDED_REASON[reason] ?? reason}).`;
}

/** Why a finished call ended, for its line in "Recent calls". */
export function endedReasonText(reason) {
  return reason ? (ENDED_REASON[reason] ?? reason.replaceAll('_', ' ')) : 'ended';
}

/** What became of the call once the server heard our microphone failed (/api/microphone-failed
 * answers the outcome, and the call's status after it). */
export function afterMicrophoneFailed(res) {
  if (res.outcome === 'declined') return 'The transfer has been declined';
  if (res.outcome === 'left') return 'You have left the call';
  // requeued (or handed over to a briefed Agent B): queued means nobody else was free.
  return res.status === 'queued' ? 'The caller is on hold until another agent is free' : 'The call has been passed to another agent';
}

export function idleText(mode, presence) {
  if (presence === 'away') return 'You are away: no calls or transfers are routed to you. Choose “Available” when you are ready for them.';
  return mode === 'agent-b'
    ? 'Waiting for transfers. An incoming transfer appears here with the caller, who is transferring, and the summary.'
    : 'Waiting for calls. New calls are joined automatically while you are available.';
}

/** The call panel's heading and subheading for a phase. */
export function callHeading(phase, transfer, other) {
  switch (phase) {
    case 'with-customer': return ['Customer Call Active', 'You are talking with the customer.'];
    case 'transfer-out': return transfer?.status === 'briefing'
      ? [`Briefing ${other}`, 'Private transfer room: the customer is on hold and cannot hear you.']
      : [`Calling ${other}…`, 'The customer is on hold while the transfer rings.'];
    case 'briefing-in': return [`Briefing with ${other}`, 'Private transfer room: the customer is on hold and cannot hear you. The summary is below.'];
    case 'handed-off': return ['Transfer completed', 'Another agent has the customer now. Leave the call when you are ready.'];
    default: return [undefined, undefined];
  }
}

export function feedText(mode) {
  return {
    connecting: 'Updates: connecting…',
    sse: 'Updates: live',
    polling: 'Updates: checking every 2 s (live channel unavailable)',
  }[mode] ?? mode;
}

/**
 * The audio status line.
 * @param {{state: string, roomName: string|null, people: string[]}} audio
 * @param {boolean} retrying  a room retry is scheduled
 * @param {boolean} wantRoom  this agent belongs in a room
 */
export function audioText({ state, roomName, people }, retrying, wantRoom) {
  const roomKind = isTransferRoom(roomName) ? 'private transfer room' : 'customer room';
  switch (state) {
    case 'connecting': return `Connecting to the ${roomKind}…`;
    case 'connected': return `Connected, ${roomKind}${people.length ? `, with ${people.join(', ')}` : ', nobody else here yet'}`;
    case 'reconnecting': return 'Reconnecting…';
    case 'failed':
    case 'disconnected': return retrying ? 'Not connected; retrying automatically' : 'Not connected';
    default: return wantRoom ? 'Joining…' : 'Not in a room';
  }
}
