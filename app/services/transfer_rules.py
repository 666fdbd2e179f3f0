"""Transfer rules shared with the call lifecycle, run inside the caller's transaction.

How an open transfer ends without completing (and who is told), what happens to it when the
call ends, and what happens when the agent who owns the call leaves it. `app.services.calls`,
`app.services.transfers` and the phone-leg webhooks all use them, so a transfer ends the same
way whichever path ends it. Re-exported by `app.services.transfers`.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from app import states
from app.events import emit
from app.models import Call, Transfer, utcnow
from app.repo import load_call, load_transfer, open_transfer, release_agent, require_transition, transition
from app.services.phone_legs import LegPlan
from app.services.routing import assign_in

T = states.TransferStatus


def end_transfer(
    s: Session,
    t: Transfer,
    event: str,
    *,
    reason: str,
    error_code: str | None = None,
    reason_code: str | None = None,
    resume_call: bool = True,
    legs: LegPlan | None = None,
) -> bool:
    """End an open transfer without completing it. False if it had already ended (a no-op).
    With `legs`, Agent B's phone leg (if any) is planned for teardown after commit."""
    values = dict(ended_at=utcnow(), reason=reason, reason_code=reason_code, error_code=error_code)
    if not transition(s, "transfer", t.id, event, **values):
        return False
    call = load_call(s, t.call_id)
    if t.to_agent_id and t.to_agent_id != call.agent_id:
        release_agent(s, t.to_agent_id, call.id)
    if resume_call:
        transition(s, "call", call.id, "resume")
    if legs is not None:
        # Reloaded: the leg's SID may have been stored by a dial that committed meanwhile.
        legs.teardown(load_transfer(s, t.id), caller_left=event == "caller_left")
    outcome = states.edge("transfer", event).target
    payload = {
        "transfer_id": t.id,
        "outcome": str(outcome),
        "reason": reason,
        "reason_code": reason_code,
        "error_code": error_code,
        "handed_over": False,
    }
    emit(s, states.FAILURE_EVENT_TYPE[outcome], payload, audiences=[t.from_agent_id, t.to_agent_id], call_id=t.call_id)
    return True


def close_for_call_end(s: Session, t: Transfer, *, by_customer: bool, reason: str, legs: LegPlan | None = None) -> None:
    if by_customer:
        end_transfer(s, t, "caller_left", reason="The caller hung up.", reason_code="caller_left", resume_call=False, legs=legs)
    else:
        end_transfer(s, t, "cancel", reason=f"The call was ended ({reason}).", reason_code=reason, resume_call=False, legs=legs)


def owner_left(s: Session, call: Call, agent_id: str, rooms: list[str], legs: LegPlan | None = None) -> str:
    """The agent who owns the call left it. Agent B takes over if already briefed, else requeue.
    A phone Agent B (even an outside number, who then owns the call with no dashboard agent)
    is moved from the transfer room into the customer's room."""
    t = open_transfer(s, call.id)
    if t is not None and t.status == T.BRIEFING and (t.to_agent_id or t.to_phone):
        now = utcnow()
        require_transition(s, "transfer", t.id, "agent_a_left", ended_at=now, handed_over_at=now, reason="Agent A left during the briefing; Agent B now has the customer.", reason_code="agent_a_left")
        require_transition(s, "call", call.id, "hand_over", agent_id=t.to_agent_id)
        release_agent(s, agent_id, call.id)
        if t.to_phone and legs is not None:
            legs.move_into_call(load_transfer(s, t.id), call)
        payload = {
            "transfer_id": t.id,
            "outcome": str(T.AGENT_A_LEFT),
            "reason": "Agent A left during the briefing; you now have the customer.",
            "handed_over": True,
            "customer_room": call.room_name,
        }
        emit(s, "transfer_failed", payload, audiences=[agent_id, t.to_agent_id], call_id=call.id)
        rooms.append(t.transfer_room)
        return "handed_over"
    if t is not None:
        end_transfer(s, t, "agent_a_left", reason="Agent A left before Agent B joined.", reason_code="agent_a_left", legs=legs)
        rooms.append(t.transfer_room)
    release_agent(s, agent_id, call.id)
    require_transition(s, "call", call.id, "requeue", agent_id=None, assigned_at=None)
    emit(s, "call_queued", {"room_name": call.room_name, "customer_name": call.customer_name, "previous_agent_id": agent_id}, audiences=[], call_id=call.id)
    assign_in(s, load_call(s, call.id), exclude=(agent_id,))
    return "requeued"
