"""What must happen outside the database after a change: recorded as tasks in the same transaction.

Services call these inside `with db.transaction() as s:`; a worker runs them after the commit
(`app.worker.tasks` has the handler of each kind). Nothing here talks to LiveKit or Twilio.
Order between tasks, where it matters, is a chain: a task's `then` list is enqueued when it ends
(done or failed), e.g. "hang up Agent B's phone leg, *then* delete the transfer room it is in".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app import outbox

# Side effects
CREATE_ROOM = "livekit.create_room"
DELETE_ROOM = "livekit.delete_room"
REMOVE_PARTICIPANT = "livekit.remove_participant"
UPDATE_LEG = "twilio.update_leg"
DIAL_AGENT_B = "twilio.dial_agent_b"
REDIRECT_CALLER = "twilio.redirect_caller"
REFRESH_DRAFT = "summary.refresh_draft"
# Timers: armed when their clock starts, due when it runs out; the handler re-computes the deadline
# from the facts it was armed for and its own settings (putting itself back if it is early, e.g.
# after a setting changed), then re-checks those facts.
TRANSFER_RING_TIMER = "timer.transfer_ring"
ANSWER_TIMER = "timer.agent_answer"
CUSTOMER_GRACE_TIMER = "timer.customer_grace"
AGENT_GRACE_TIMER = "timer.agent_grace"
# app.services.arrivals: someone who must turn up where the call needs them.
CUSTOMER_JOIN_TIMER = "timer.customer_join"
HANDOVER_JOIN_TIMER = "timer.handover_join"
AGENT_B_GRACE_TIMER = "timer.agent_b_grace"


@dataclass(frozen=True)
class LegAction:
    """One REST request on Agent B's phone leg: `status` (canceled | completed) ends it, `twiml`
    redirects it. `purpose` tells the worker how to judge a retry (see app.worker.tasks)."""

    transfer_id: str
    call_sid: str
    purpose: str  # teardown | caller_left | move_into_call | goodbye
    status: str | None = None
    twiml: str | None = None


def step(kind: str, payload: dict, delay_s: float = 0.0) -> dict:
    """A follow-up for a task's `then` list."""
    return {"kind": kind, "payload": payload, "delay_s": delay_s}


def delete_room_step(room: str, *, wait_for_bridge: str | None = None, bridge_deadline: datetime | None = None) -> dict:
    payload: dict = {"room": room}
    if wait_for_bridge:
        payload["wait_for_bridge"] = wait_for_bridge
        payload["deadline"] = bridge_deadline.isoformat() if bridge_deadline else None
    return step(DELETE_ROOM, payload)


def create_room(s: Session, room: str, *, metadata: dict, max_participants: int = 0) -> None:
    outbox.enqueue(s, CREATE_ROOM, {"room": room, "metadata": metadata, "max_participants": max_participants})


def delete_room(s: Session, room: str) -> None:
    outbox.enqueue(s, DELETE_ROOM, {"room": room})


def remove_participant(s: Session, room: str, identity: str) -> None:
    outbox.enqueue(s, REMOVE_PARTICIPANT, {"room": room, "identity": identity})


def update_leg(s: Session, action: LegAction, then: list[dict] | tuple = ()) -> None:
    outbox.enqueue(s, UPDATE_LEG, dict(asdict(action), then=list(then)))


def dial_agent_b(s: Session, transfer_id: str) -> None:
    # Placing a call is not idempotent (Twilio's Calls API has no idempotency key): one attempt.
    outbox.enqueue(s, DIAL_AGENT_B, {"transfer_id": transfer_id}, max_attempts=1)


def redirect_caller(s: Session, call_id: str) -> None:
    """A phone caller waiting in Twilio's hold loop has an agent now: fetch the bridge at once
    instead of at the end of the current round of hold music."""
    outbox.enqueue(s, REDIRECT_CALLER, {"call_id": call_id}, max_attempts=3)


def refresh_draft(s: Session, call_id: str, debounce_s: float) -> None:
    """Debounced: a burst of context lines moves the one pending refresh later instead of adding more."""
    outbox.enqueue(s, REFRESH_DRAFT, {"call_id": call_id}, delay_s=debounce_s, dedupe_key=call_id, replace_due=True, max_attempts=3)


def refresh_draft_at(s: Session, call_id: str, at: datetime) -> None:
    """The refresh held back until the call may be drafted again (SUMMARY_REDRAFT_S); context that
    arrives meanwhile cannot bring it forward (a pending refresh only ever moves later)."""
    outbox.enqueue(s, REFRESH_DRAFT, {"call_id": call_id}, due_at=at, dedupe_key=call_id, replace_due=True, max_attempts=3)


def arm(s: Session, kind: str, payload: dict, at: datetime) -> None:
    outbox.enqueue(s, kind, payload, due_at=at)


# The arrival timers (app.services.arrivals) are armed this soon and put themselves back to their
# real deadline: arming needs no settings, and a deadline shortened by configuration still counts.
ARRIVAL_CHECK_AFTER = timedelta(seconds=5)


def arm_customer_join(s: Session, call, since: datetime) -> None:
    """A web call's agent has joined: the customer's browser must now reach LiveKit."""
    if call.channel == "web" and call.customer_joined_at is None:
        arm(s, CUSTOMER_JOIN_TIMER, {"call_id": call.id, "since": since.isoformat()}, since + ARRIVAL_CHECK_AFTER)


def arm_handover_join(s: Session, transfer_id: str, handed_over_at: datetime) -> None:
    """The call is Agent B's now: they must reach the customer's room."""
    arm(s, HANDOVER_JOIN_TIMER, {"transfer_id": transfer_id}, handed_over_at + ARRIVAL_CHECK_AFTER)


def arm_agent_b_return(s: Session, transfer_id: str, agent_id: str, left_at: datetime) -> None:
    """Agent B's browser left the briefing: it must come back (a refresh) or the transfer is declined."""
    payload = {"transfer_id": transfer_id, "agent_id": agent_id, "left_at": left_at.isoformat()}
    arm(s, AGENT_B_GRACE_TIMER, payload, left_at + ARRIVAL_CHECK_AFTER)
