"""Small data-access helpers shared by the services: conditional transitions and agent slots.

Every status change goes through `transition`, which turns the pure state machine into
`UPDATE ... WHERE id = :id AND status IN (:sources)`. The row count says whether this request
won; a loser changes nothing.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import states
from app.errors import Conflict, NotFound
from app.models import Agent, Call, Transfer, utcnow

_MODELS = {"call": Call, "transfer": Transfer}


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def transition(s: Session, machine: str, id_: str, event: str, *, only_if=(), **values) -> bool:
    """Apply `event` if the row is in one of its source states (and every `only_if` condition
    still holds: the facts a decision was based on, re-checked atomically). `status_changed_at`
    is stamped with the change (the supervisor view's time in state)."""
    model = _MODELS[machine]
    values.setdefault("status_changed_at", utcnow())
    edge = states.edge(machine, event)
    result = s.execute(
        update(model)
        .where(model.id == id_, model.status.in_([str(x) for x in edge.sources]), *only_if)
        .values(status=str(edge.target), **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def require_transition(s: Session, machine: str, id_: str, event: str, **values) -> None:
    if transition(s, machine, id_, event, **values):
        return
    model = _MODELS[machine]
    current = s.scalar(select(model.status).where(model.id == id_))
    if current is None:
        raise NotFound(f"No {machine} with id {id_}.")
    label = "Call" if machine == "call" else "Transfer"
    raise Conflict(f"{label} {id_} is {current}; it cannot {event.replace('_', ' ')} now.")


def load_call(s: Session, call_id: str, *, for_update: bool = False) -> Call:
    call = s.get(Call, call_id, populate_existing=True, with_for_update=for_update or None)
    if call is None:
        raise NotFound(f"No call with session_id {call_id}.")
    return call


def load_transfer(s: Session, transfer_id: str) -> Transfer:
    transfer = s.get(Transfer, transfer_id, populate_existing=True)
    if transfer is None:
        raise NotFound(f"No transfer with id {transfer_id}.")
    return transfer


def open_transfer(s: Session, call_id: str) -> Transfer | None:
    return s.scalar(
        select(Transfer).where(Transfer.call_id == call_id, Transfer.status.in_([str(x) for x in states.TRANSFER_OPEN]))
    )


def mark_notified(s: Session, transfer_id: str, at: datetime) -> bool:
    """Agent B was first told of this transfer at `at`; False if an earlier telling (another
    stream, another process) was recorded already. Only ever set once, and only while the transfer
    is open: an Agent B whose stream replays the backlog hours later was not told then."""
    result = s.execute(
        update(Transfer)
        .where(Transfer.id == transfer_id, Transfer.notified_at.is_(None), Transfer.status.in_([str(x) for x in states.TRANSFER_OPEN]))
        .values(notified_at=at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def free_now():
    """The condition on `Agent` for "can take a call or a transfer in the dashboard right now"."""
    return (Agent.presence == "available", Agent.active_call_id.is_(None), Agent.disabled_at.is_(None))


def claim_agent(s: Session, agent_id: str, call_id: str) -> bool:
    """Give `agent_id` this call if they are free. Atomic: two workers cannot both win."""
    result = s.execute(
        update(Agent)
        .where(Agent.id == agent_id, Agent.active_call_id.is_(None))
        .values(active_call_id=call_id, last_assigned_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_agent(s: Session, agent_id: str | None, call_id: str) -> bool:
    if not agent_id:
        return False
    result = s.execute(
        update(Agent)
        .where(Agent.id == agent_id, Agent.active_call_id == call_id)
        .values(active_call_id=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def agents_in_call(s: Session, call_id: str) -> list[str]:
    return list(s.scalars(select(Agent.id).where(Agent.active_call_id == call_id)))
