// The console's state and every change made to it. `reduce(state, action)` is pure: it returns
// the next state (never changing the one it was given) and the effects the page must show —
// alerts, notices, a chime, a render, a reconcile with the server — in the order they happen.
// The page's other modules dispatch actions and read `store.state`; none of them assigns into it.

import {
  callEndedAlert, customerBackNotice, customerDroppedNotice, missedCallAlert, newCallAlert,
  transferAcceptedAlert, transferCompletedAlert, transferEndedAlert, transferTakenAlert,
} from './messages.js';
import { derivePhase } from './phase.js';

export function initialState() {
  return {
    me: null, // the signed-in agent (/api/me `agent`), null when signed out
    csrf: null,
    call: null, // the agent's active call as /api/calls/<id> answered it, patched by events since
    view: derivePhase(null, null), // {phase, transfer, room}: see phase.js
    incoming: null, // a transfer ringing for this agent
    customerAway: null, // {session_id, since, grace_s} while a web customer is reconnecting
    entries: new Map(), // the call's context entries by id
    agents: [], // the transfer target list (/api/agents)
    teams: [], // the teams a transfer can go to, with how many members are free (/api/teams)
    micReportedFor: null, // the call whose microphone failure was reported (once per call)
  };
}

/** Effects, as data: the page runs them in order (see main.js). */
export const fx = {
  alert: (text, sticky = false) => ({ kind: 'alert', text, sticky }),
  notice: (text, level = 'info') => ({ kind: 'notice', text, level }),
  chime: { kind: 'chime' },
  hideAlert: { kind: 'hideAlert' },
  callChanged: { kind: 'callChanged' },
  render: { kind: 'render' },
  renderContext: { kind: 'renderContext' },
  renderAgents: { kind: 'renderAgents' },
  reconcile: { kind: 'reconcile' },
  /** "Recent calls" reads its first page again (signed in, or a call left this screen). */
  refreshHistory: { kind: 'refreshHistory' },
};

/** How the console names an agent: "you", their display name, or their id. */
export function nameOf(state, agentId) {
  if (!agentId) return 'unknown agent';
  if (state.me && agentId === state.me.id) return 'you';
  return state.agents.find((a) => a.id === agentId)?.name ?? agentId;
}

/** How the console names a team: its name from /api/teams, or its id. */
export function teamName(state, teamId) {
  return state.teams.find((t) => t.id === teamId)?.name ?? teamId;
}

/** The web customer's connection as the call's timeline last reported it (customer_presence
 * events): null while they are there, {session_id, since, grace_s} while they are gone. */
export function customerAwayFrom(call) {
  let last = null;
  for (const e of call?.timeline ?? []) if (e.type === 'customer_presence') last = e;
  if (!last || last.payload.present) return null;
  return { session_id: call.session_id, since: last.created_at, grace_s: last.payload.grace_s };
}

function withView(state) {
  return { ...state, view: derivePhase(state.call, state.me?.id) };
}

/** The call with one of its transfers changed (the phase follows); unchanged if it is unknown. */
function patchTransfer(state, id, fields) {
  if (!state.call?.transfers.some((t) => t.id === id)) return state;
  const transfers = state.call.transfers.map((t) => (t.id === id ? { ...t, ...fields } : t));
  return withView({ ...state, call: { ...state.call, transfers } });
}

function withMe(state, me) {
  return { ...state, me: { ...state.me, ...me.agent }, csrf: me.csrf_token };
}

const ACTIONS = {
  /** An /api/me answer at sign-in: a ringing transfer shows at once. */
  signedIn: (s, { me }) => [{ ...withMe(s, me), incoming: me.pending_transfers[0] ?? null }, [fx.render, fx.refreshHistory]],
  /** An /api/me answer read while reconciling (who we are, a fresh CSRF token). */
  me: (s, { me }) => [withMe(s, me), []],
  csrf: (s, { csrf }) => [{ ...s, csrf }, []],
  /** The server's state: the active call (or null) and the transfer ringing for us. */
  snapshot: (s, { call, incoming }) => {
    const changed = call?.session_id !== s.call?.session_id;
    const entries = changed ? new Map() : new Map(s.entries);
    for (const e of call?.context ?? []) entries.set(e.id, e);
    const next = { ...s, call, entries, incoming, customerAway: customerAwayFrom(call), view: derivePhase(call, s.me.id) };
    // A call that left this screen (ended, or handed over) may now be in "Recent calls".
    return [next, changed ? [fx.callChanged, fx.render, ...(s.call ? [fx.refreshHistory] : [])] : [fx.render]];
  },
  // Rendered by the session once the room is left (see session.js).
  signedOut: (s) => [{ ...s, me: null, csrf: null, call: null, incoming: null, customerAway: null, view: derivePhase(null, null) }, []],
  /** Reset (Agent B dashboard): forget what is shown until the server says it again. */
  cleared: (s) => [{ ...s, incoming: null, customerAway: null, entries: new Map() }, [fx.callChanged, fx.render]],
  presence: (s, { agent }) => [{ ...s, me: { ...s.me, ...agent } }, [fx.render]],
  agents: (s, { agents }) => [{ ...s, agents }, [fx.renderAgents]],
  teams: (s, { teams }) => [{ ...s, teams }, [fx.renderAgents]],
  contextAdded: (s, { entry }) => [{ ...s, entries: new Map(s.entries).set(entry.id, entry) }, [fx.renderContext]],
  /** Our POST /api/initiate-transfer was answered: the transfer room is ours at once. */
  transferStarted: (s, { transfer }) => {
    const call = { ...s.call, transfers: [...s.call.transfers, transfer] };
    return [withView({ ...s, call }), [fx.render]];
  },
  /** The incoming transfer was accepted, declined or refused: it no longer rings. */
  incomingDone: (s, { transferId, render = false }) => {
    const done = transferId === undefined || s.incoming?.transfer_id === transferId;
    return [done ? { ...s, incoming: null } : s, render ? [fx.render] : []];
  },
  micReported: (s, { sessionId }) => [{ ...s, micReportedFor: sessionId }, []],
  event: (s, { event, data }) => onEvent(s, event, data),
};

/** @returns {{state: object, effects: object[]}} */
export function reduce(state, action) {
  const handler = ACTIONS[action.type];
  if (!handler) throw new Error(`unknown console action ${action.type}`);
  const [next, effects] = handler(state, action);
  return { state: next, effects };
}

function onTransferEnded(state, data) {
  const wasIncoming = state.incoming?.transfer_id === data.transfer_id;
  const iAmB = wasIncoming || state.view.transfer?.to_agent_id === state.me?.id;
  let next = patchTransfer(state, data.transfer_id, { status: data.outcome, reason: data.reason, error_code: data.error_code });
  if (wasIncoming) next = { ...next, incoming: null };
  return [next, [fx.alert(transferEndedAlert(data, iAmB), true)]];
}

/** One server event: the screen changes at once, then (mostly) the server is asked again. */
function onEvent(state, type, data) {
  const thisCall = Boolean(state.call) && data.session_id === state.call.session_id;
  const name = (id) => nameOf(state, id);
  let next = state;
  let effects = [];
  switch (type) {
    case 'call_assigned':
      effects = [fx.alert(newCallAlert(data)), fx.chime];
      break;
    case 'call_missed':
      // The server has set us away and given the call to someone else; the reconcile shows
      // both (presence from /api/me, no call). A microphone failure was told with its outcome.
      if (!(data.microphone_error && state.micReportedFor === data.session_id)) {
        effects = [fx.alert(missedCallAlert(data, thisCall ? state.call.customer_name : null), true)];
      }
      break;
    case 'customer_presence': {
      if (!thisCall) return [state, []]; // the call's timeline says the same when it loads
      const customer = state.call.customer_name;
      if (data.present) {
        effects = state.customerAway ? [fx.notice(customerBackNotice(customer))] : [];
        next = { ...state, customerAway: null };
      } else {
        next = { ...state, customerAway: { session_id: data.session_id, since: data.created_at, grace_s: data.grace_s } };
        effects = [fx.notice(customerDroppedNotice(customer), 'alert')];
      }
      return [next, [...effects, fx.render]]; // nothing else changed: no reconcile needed
    }
    case 'context_added':
      if (!thisCall || !data.entry) return [state, []];
      return [{ ...state, entries: new Map(state.entries).set(data.entry.id, data.entry) }, [fx.renderContext]];
    case 'transfer_requested':
      next = {
        ...state,
        incoming: {
          transfer_id: data.transfer_id,
          session_id: data.session_id,
          customer_name: data.customer_name,
          from_agent_id: data.from_agent_id,
          from_agent_name: data.from_agent_name,
          summary: data.summary,
          requested_at: data.created_at,
          // A team transfer rings every free member: the first to accept takes it.
          ...(data.to_team ? { to_team: data.to_team, team_name: data.team_name } : {}),
        },
      };
      // The orange panel is the alert; an older banner is stale now.
      effects = [fx.notice(`Incoming transfer: ${data.customer_name}, from ${data.from_agent_name}.`, 'alert'), fx.hideAlert, fx.chime];
      break;
    case 'transfer_ringing':
      next = patchTransfer(state, data.transfer_id, { status: 'ringing' });
      effects = [fx.notice(data.to_team && !data.to_agent_id ? `Ringing team ${teamName(state, data.to_team)}…` : `Ringing ${name(data.to_agent_id)}…`)];
      break;
    case 'transfer_taken':
      // Another member of the team accepted first: this dashboard stops ringing.
      if (state.incoming?.transfer_id !== data.transfer_id) return [state, [fx.reconcile]];
      next = { ...state, incoming: null };
      effects = [fx.alert(transferTakenAlert(data.to_agent_name ?? name(data.to_agent_id), state.incoming.customer_name))];
      break;
    case 'transfer_accepted':
      next = patchTransfer(state, data.transfer_id, { status: 'briefing' });
      effects = [fx.alert(transferAcceptedAlert(name(data.to_agent_id)))];
      break;
    case 'transfer_declined':
    case 'transfer_cancelled':
    case 'transfer_failed':
      [next, effects] = onTransferEnded(state, data);
      break;
    case 'transfer_completed':
      next = patchTransfer(state, data.transfer_id, { status: 'completed' });
      if (thisCall) next = { ...next, call: { ...next.call, agent_id: data.to_agent_id } };
      next = withView(next);
      effects = [fx.alert(transferCompletedAlert(data.to_agent_id === state.me?.id ? null : name(data.to_agent_id)))];
      break;
    case 'call_ended':
      if (state.incoming?.session_id === data.session_id) next = { ...next, incoming: null };
      if (thisCall) {
        next = { ...next, customerAway: null };
        effects = [fx.alert(callEndedAlert(state.call.customer_name, data), true)];
      }
      break;
    case 'agent_left':
      if (data.agent_id !== state.me?.id) effects = [fx.notice(`${name(data.agent_id)} left the call.`)];
      break;
    default:
      break;
  }
  return [next, [...effects, fx.render, fx.reconcile]];
}

/** Holds the state; listeners get (state, effects) after every dispatch. */
export class Store {
  constructor(state = initialState()) {
    this.state = state;
    this.listeners = [];
  }

  subscribe(listener) {
    this.listeners.push(listener);
  }

  dispatch(action) {
    const { state, effects } = reduce(this.state, action);
    this.state = state;
    for (const listener of this.listeners) listener(state, effects);
    return effects;
  }
}
