"""`GET /api/calls`: the calls an agent has handled or is being offered, and nothing else.

The list shows each caller's name and number, so an agent sees a call only while or because they
took part in it: they own it now, are in it now, started a transfer of it (they had it), or are
Agent B of a transfer still open (they have been offered it) or that they accepted (they were
briefed). An Agent B who declined, let it ring out, or whose transfer was cancelled before they
accepted never had the caller, and does not get their name and number afterwards.
"""
from __future__ import annotations

from sqlalchemy import and_, func, or_, select

from app import states
from app.db import Database
from app.models import Agent, Call, Transfer
from app.serializers import call_dict

LIST_LIMIT = 50


def took_part(agent_id: str):
    """The calls `agent_id` is entitled to see in their list (see the module's docstring)."""
    slot = select(Agent.active_call_id).where(Agent.id == agent_id).scalar_subquery()
    offered_or_briefed = and_(
        Transfer.to_agent_id == agent_id,
        or_(Transfer.status.in_(sorted(states.TRANSFER_OPEN)), Transfer.answered_at.is_not(None)),
    )
    via_transfer = select(Transfer.call_id).where(or_(Transfer.from_agent_id == agent_id, offered_or_briefed))
    return or_(Call.agent_id == agent_id, Call.id == slot, Call.id.in_(via_transfer))


def list_calls(db: Database, agent_id: str) -> dict:
    with db.reading() as s:
        calls = s.scalars(select(Call).where(took_part(agent_id)).order_by(Call.created_at.desc()).limit(LIST_LIMIT))
        queued = s.scalar(select(func.count()).select_from(Call).where(Call.status == "queued")) or 0
        return {"calls": [call_dict(c) for c in calls], "queued": queued}
