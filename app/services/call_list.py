"""`GET /api/calls`: the calls an agent has handled or is being offered, and nothing else.

The list shows each caller's name and number, so an agent sees a call only while or because they
took part in it: they own it now, are in it now, started a transfer of it (they had it), or are
Agent B of a transfer still open (they have been offered it) or that they accepted (they were
briefed). An Agent B who declined, let it ring out, or whose transfer was cancelled before they
accepted never had the caller, and does not get their name and number afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from app import states
from app.db import Database
from app.errors import NotFound
from app.models import Agent, Call, Transfer
from app.serializers import call_dict

LIST_LIMIT = 50
PAGE_MAX = 100
# `status=ended`: any final status (completed, abandoned, failed), the "Recent calls" panel's list.
ENDED = "ended"
STATUS_FILTERS = frozenset({ENDED, *(str(s) for s in states.CallStatus)})


@dataclass(frozen=True)
class Page:
    """One page of an agent's calls, newest first: `status` (a call status or "ended"), at most
    `limit` calls, those older than the call `before` (the previous page's `next_before`)."""

    status: str | None = None
    limit: int = LIST_LIMIT
    before: str | None = None


def took_part(agent_id: str):
    """The calls `agent_id` is entitled to see in their list (see the module's docstring)."""
    slot = select(Agent.active_call_id).where(Agent.id == agent_id).scalar_subquery()
    offered_or_briefed = and_(
        Transfer.to_agent_id == agent_id,
        or_(Transfer.status.in_(sorted(states.TRANSFER_OPEN)), Transfer.answered_at.is_not(None)),
    )
    via_transfer = select(Transfer.call_id).where(or_(Transfer.from_agent_id == agent_id, offered_or_briefed))
    return or_(Call.agent_id == agent_id, Call.id == slot, Call.id.in_(via_transfer))


def list_calls(db: Database, agent_id: str, page: Page) -> dict:
    """A page of the calls `agent_id` took part in, newest first, with the queue's length.

    Paging is by key (created_at, id), not by offset: calls that start while an agent reads their
    history do not shift the next page. `before` is a call id the agent may see (the last one of
    the previous page); any other id is 404 rather than silently read as "from the start".
    """
    query = select(Call).where(took_part(agent_id))
    if page.status == ENDED:
        query = query.where(Call.status.in_(sorted(states.CALL_TERMINAL)))
    elif page.status is not None:
        query = query.where(Call.status == page.status)
    with db.reading() as s:
        if page.before is not None:
            anchor = s.scalar(select(Call).where(Call.id == page.before, took_part(agent_id)))
            if anchor is None:
                # Not found *for this agent*: a call they never took part in does not exist for them.
                raise NotFound("before: no such call among yours; pass the previous page's next_before.")
            query = query.where(or_(Call.created_at < anchor.created_at, and_(Call.created_at == anchor.created_at, Call.id < anchor.id)))
        calls = list(s.scalars(query.order_by(Call.created_at.desc(), Call.id.desc()).limit(page.limit)))
        queued = s.scalar(select(func.count()).select_from(Call).where(Call.status == "queued")) or 0
        full = len(calls) == page.limit
        return {"calls": [call_dict(c) for c in calls], "queued": queued, "next_before": calls[-1].id if full else None}
