"""Transfer rules shared with the call lifecycle, run inside the caller's transaction.

How an open transfer ends without completing (and who is told), what happens to it when the
call ends, and what happens when the agent who owns the call leaves it. `app.services.calls`,
`app.services.transfers` and the phone-leg webhooks all use them, so a transfer ends the same
way whichever path ends it. Re-exported by `app.services.transfers`.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from app import metrics, states
from app.events import emit
from app.models import Call, Transfer, utcnow
from app.repo import load_call, load_transfer, open_transfer, release_agent, require_transition, transition
from app.services import effects, team_offers
from app.services.phone_legs import PhoneLegs
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
    legs: PhoneLegs | None = None,
    sip_response_code: int | None = None,
) -> bool:
    """End an open transfer without completing it. False if it had already ended (a no-op).

    After commit, Agent B's phone leg (if any, and with `legs`) is ended first and *then* the
    transfer room is deleted: deleting the room first would cut Agent B off without a word."""
    values = dict(ended_at=utcnow(), reason=reason, reason_code=reason_code, error_code=error_code, sip_response_code=sip_response_code)
    if not transition(s, "transfer", t.id, event, **values):
        return False
    if t.to_team and t.to_agent_id is None:
        # Reloaded: a team transfer may have been taken (to_agent_id set) since `t` was read,
        # and whoever took it must be released and told.
        t = load_transfer(s, t.id)
    call = load_call(s, t.call_id)
    if t.to_agent_id and t.to_agent_id != call.agent_id:
        release_agent(s, t.to_agent_id, call.id)
    if resume_call:
        transition(s, "call", call.id, "resume")
    # Reloaded: the leg's SID may have been stored by a dial that committed meanwhile.
    cleanup = [effects.delete_room_step(t.transfer_room)]
    if legs is None or not legs.schedule_teardown(s, load_transfer(s, t.id), caller_left=event == "caller_left", then=cleanup):
        effects.delete_room(s, t.transfer_room)
    outcome = states.edge("transfer", event).target
    to_phone = t.to_phone
    metrics.after_commit(s, lambda: metrics.transfer_ended(to_phone, str(outcome)))
    payload = {
        "transfer_id": t.id,
        "outcome": str(outcome),
        "reason": reason,
        "reason_code": reason_code,
        "error_code": error_code,
        "sip_response_code": sip_response_code,
        "handed_over": False,
    }
    # A team transfer nobody took still rings on the dashboards of the members offered it.
    ringing = team_offers.offered(s, t.id) if t.to_team and t.to_agent_id is None else []
    emit(s, states.FAILURE_EVENT_TYPE[outcome], payload, audiences=[t.from_agent_id, t.to_agent_id, *ringing], call_id=t.call_id)
    return True


def close_for_call_end(s: Session, t: Transfer, *, by_customer: bool, reason: str, legs: PhoneLegs | None = None) -> None:
    if by_customer:
        end_transfer(s, t, "caller_left", reason="The caller hung up.", reason_code="caller_left", resume_call=False, legs=legs)
    else:
        end_transfer(s, t, "cancel", reason=f"The call was ended ({reason}).", reason_code=reason, resume_call=False, legs=legs)


def owner_left(s: Session, call: Call, agent_id: str | None, legs: PhoneLegs | None = None) -> str:
    """The agent who owns the call left it. Agent B takes over if already briefed, else requeue.
    A phone Agent B (even an outside number, who then owns the call with no dashboard agent)
    is moved from the transfer room into the customer's room."""
    t = open_transfer(s, call.id)
    if t is not None and t.status == T.BRIEFING and (t.to_agent_id or t.to_phone):
        now = utcnow()
        require_transition(s, "transfer", t.id, "agent_a_left", ended_at=now, handed_over_at=now, reason="Agent A left during the briefing; Agent B now has the customer.", reason_code="agent_a_left")
        require_transition(s, "call", call.id, "hand_over", agent_id=t.to_agent_id)
        to_phone = t.to_phone
        metrics.after_commit(s, lambda: metrics.transfer_ended(to_phone, str(T.AGENT_A_LEFT)))
        release_agent(s, agent_id, call.id)
        if t.to_phone and legs is not None:
            legs.schedule_move(s, load_transfer(s, t.id), call)
        else:
            effects.delete_room(s, t.transfer_room)
        payload = {
            "transfer_id": t.id,
            "outcome": str(T.AGENT_A_LEFT),
            "reason": "Agent A left during the briefing; you now have the customer.",
            "handed_over": True,
            "customer_room": call.room_name,
        }
        emit(s, "transfer_failed", payload, audiences=[agent_id, t.to_agent_id], call_id=call.id)
        effects.arm_handover_join(s, t.id, now)  # Agent B must now reach the customer
        return "handed_over"
    if t is not None:
        end_transfer(s, t, "agent_a_left", reason="Agent A left before Agent B joined.", reason_code="agent_a_left", legs=legs)
    release_agent(s, agent_id, call.id)
    # requeued_at: the customer now waits in the room for the next agent, hearing hold audio.
    require_transition(s, "call", call.id, "requeue", agent_id=None, assigned_at=None, requeued_at=utcnow())
    emit(s, "call_queued", {"room_name": call.room_name, "customer_name": call.customer_name, "previous_agent_id": agent_id}, audiences=[], call_id=call.id)
    assign_in(s, load_call(s, call.id), exclude=(agent_id,) if agent_id else ())
    return "requeued"
