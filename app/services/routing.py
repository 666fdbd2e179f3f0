"""Routing: give a waiting call to an available agent, fairly and exactly once.

An agent is claimed with a conditional UPDATE on `agents.active_call_id`, and the call moves
`queued -> ringing` with a conditional UPDATE too, both in one transaction. If another worker
wins either race, the transaction rolls back and nothing is half-assigned.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import metrics
from app.config import MIN_ANSWER_TIMEOUT_S
from app.db import Database
from app.events import emit
from app.models import Agent, Call, Transfer, utcnow
from app.repo import claim_agent, free_now, release_agent, transition
from app.services import effects


class _LostRace(Exception):
    pass


# Free agents tried per assignment. On PostgreSQL the one found is locked until the transaction
# ends, so it must be one: locking more would hide free agents from the arrivals beside it.
CANDIDATES = 1


def claim_available_agent(s: Session, call_id: str, exclude: tuple[str, ...] = ()) -> str | None:
    """The longest-idle available agent, now holding `call_id`; None if nobody is free."""
    # An agent a transfer is ringing for is about to take that call: do not hand them another.
    awaited = select(Transfer.to_agent_id).where(Transfer.to_agent_id.is_not(None), Transfer.status.in_(["pending", "ringing"]))
    query = (
        select(Agent.id)
        .where(*free_now(), Agent.id.not_in(exclude or ("",)), Agent.id.not_in(awaited))
        .order_by(Agent.last_assigned_at.asc().nulls_first(), Agent.id)
        .limit(CANDIDATES)
    )
    if s.get_bind().dialect.name == "postgresql":
        # Concurrent arrivals must not all read the same longest-idle agents and then queue on
        # the first one's row lock (each waiting for the other's commit, and giving up on the
        # agent once it is taken): each locks the longest-idle free agent nobody else holds.
        # SQLite has one writer at a time, so it needs nothing of the kind.
        query = query.with_for_update(skip_locked=True, of=Agent)
    for agent_id in list(s.scalars(query)):
        if claim_agent(s, agent_id, call_id):
            return agent_id
    return None


def assigned_payload(call: Call) -> dict:
    return {
        "room_name": call.room_name,
        "customer_name": call.customer_name,
        "channel": call.channel,
        "caller_number": call.caller_number,
    }


def assign_in(s: Session, call: Call, exclude: tuple[str, ...] = ()) -> str | None:
    """Inside the caller's transaction: assign `call` (already flushed, status queued) if possible."""
    agent_id = claim_available_agent(s, call.id, exclude)
    if agent_id is None:
        return None
    now = utcnow()
    if not transition(s, "call", call.id, "assign", agent_id=agent_id, assigned_at=now):
        raise _LostRace()
    emit(s, "call_assigned", assigned_payload(call), audiences=[agent_id], call_id=call.id)
    # Waiting since it arrived, or since it last went back to the queue (a missed assignment, the
    # owner leaving): the wait this assignment ends.
    waiting_since = call.requeued_at or call.created_at
    if waiting_since is not None:
        waited, channel = metrics.seconds_since(waiting_since, now), metrics.closed(call.channel, metrics.CHANNELS)
        metrics.after_commit(s, lambda: metrics.QUEUE_WAIT.labels(channel).observe(waited))
    # The agent has AGENT_ANSWER_TIMEOUT_S to join (app.worker.tasks applies `answer_missed`). The
    # timer first wakes at the shortest timeout allowed, and puts itself back to the configured one.
    payload = {"call_id": call.id, "agent_id": agent_id, "assigned_at": now.isoformat()}
    effects.arm(s, effects.ANSWER_TIMER, payload, now + timedelta(seconds=MIN_ANSWER_TIMEOUT_S))
    return agent_id


def drain_queue(db: Database, limit: int = 50) -> list[tuple[str, str]]:
    """Assign queued calls, oldest first, while agents are free. Safe to run from any worker."""
    assigned: list[tuple[str, str]] = []
    for _ in range(limit):
        try:
            with db.transaction() as s:
                call = s.scalar(select(Call).where(Call.status == "queued").order_by(Call.created_at, Call.id).limit(1))
                if call is None:
                    break
                agent_id = assign_in(s, call)
                if agent_id is None:
                    break
                if call.in_hold_loop:
                    effects.redirect_caller(s, call.id)
                assigned.append((call.id, agent_id))
        except _LostRace:
            continue
    return assigned


def answer_missed(db: Database, call_id: str, agent_id: str, assigned_at, timeout_s: int) -> bool:
    """The answer timer of this assignment ran out: if `agent_id` still has not joined (the call
    is ringing for them, from this very assignment), they are set away (not at their desk) and
    the call goes to the next available agent, or back to the queue.

    A phone caller's SIP leg stays in room `call_<id>`; from now on they hear hold audio
    (`requeued_at`), which also makes LiveKit SIP answer the leg, until whichever agent joins."""
    with db.transaction() as s:
        # Re-check what the timer was armed for, atomically: the agent may have joined, or the
        # call may have been reassigned (a new assignment has a new assigned_at), since.
        still_missed = (Call.agent_id == agent_id, Call.assigned_at == assigned_at)
        if not transition(s, "call", call_id, "miss", only_if=still_missed, agent_id=None, assigned_at=None, requeued_at=utcnow()):
            return False
        release_agent(s, agent_id, call_id)
        s.execute(update(Agent).where(Agent.id == agent_id, Agent.presence == "available").values(presence="away"))
        emit(
            s,
            "call_missed",
            {"reason": f"Not joined within {timeout_s} seconds; you are now set to away."},
            audiences=[agent_id],
            call_id=call_id,
        )
        call = s.get(Call, call_id)
        if assign_in(s, call, exclude=(agent_id,)) is None:
            emit(s, "call_queued", {"room_name": call.room_name, "customer_name": call.customer_name, "previous_agent_id": agent_id}, audiences=[], call_id=call_id)
    return True
