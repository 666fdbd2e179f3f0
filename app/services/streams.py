"""Who holds which live event streams, across every process: the per-session and per-agent
limits (SSE_STREAMS_PER_SESSION, SSE_STREAMS_PER_AGENT).

A stream is a row while it is open. Opening one beyond a limit closes the agent's oldest: the
newest tab is the one the agent is looking at, and a stream whose process died (its row left
behind) is always among the oldest, so it is the first to go. The streams to close are named in a
`stream_replaced` event, which reaches them through the same dispatcher as every other event,
whatever process they are on.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from app.db import Database
from app.events import emit
from app.models import Agent, Call, CustomerStream, EventStream, utcnow


class StreamRegistry:
    def __init__(self, db: Database, per_session: int, per_agent: int, session_lifetime_s: int):
        self.db = db
        self.per_session = per_session
        self.per_agent = per_agent
        self.stale_after = timedelta(seconds=session_lifetime_s)

    def open(self, agent_id: str, login_id: str) -> str:
        stream_id = secrets.token_hex(8)
        now = utcnow()
        with self.db.transaction() as s:
            # One open at a time per agent, so two tabs opening together both count each other.
            s.get(Agent, agent_id, with_for_update=True)
            # No stream outlives its session: anything older was left by a process that died.
            s.execute(delete(EventStream).where(EventStream.agent_id == agent_id, EventStream.opened_at < now - self.stale_after))
            older = s.execute(
                select(EventStream.id, EventStream.login_id)
                .where(EventStream.agent_id == agent_id)
                .order_by(EventStream.opened_at.desc(), EventStream.id)
            ).all()
            s.add(EventStream(id=stream_id, agent_id=agent_id, login_id=login_id, opened_at=now))
            # The new stream counts first; then the others, newest first.
            victims, kept, same_login = [], 1, 1
            for other_id, other_login in older:
                mine = other_login == login_id
                if kept >= self.per_agent or (mine and same_login >= self.per_session):
                    victims.append(other_id)
                    continue
                kept += 1
                same_login += mine
            if victims:
                s.execute(delete(EventStream).where(EventStream.id.in_(victims)))
                emit(s, "stream_replaced", {"stream_ids": victims, "reason": "too_many_streams"}, audiences=[agent_id], call_id=None)
        return stream_id

    def close(self, stream_id: str) -> None:
        with self.db.transaction() as s:
            s.execute(delete(EventStream).where(EventStream.id == stream_id))


class CustomerStreamRegistry:
    """The same for web customers' status streams, counted per call (SSE_STREAMS_PER_CALL).

    A customer has no event audience of their own, so a stream closed here learns it from its
    own row: it looks for it each time it re-reads the status (on every event of its call and on
    every heartbeat), and ends with `stream_replaced` once the row is gone."""

    def __init__(self, db: Database, per_call: int, lifetime_s: int):
        self.db = db
        self.per_call = per_call
        self.stale_after = timedelta(seconds=lifetime_s)

    def open(self, call_id: str) -> str:
        stream_id = secrets.token_hex(8)
        now = utcnow()
        with self.db.transaction() as s:
            # One open at a time per call (the call row is the lock), as for an agent's streams.
            s.get(Call, call_id, with_for_update=True)
            s.execute(delete(CustomerStream).where(CustomerStream.call_id == call_id, CustomerStream.opened_at < now - self.stale_after))
            older = list(
                s.scalars(
                    select(CustomerStream.id)
                    .where(CustomerStream.call_id == call_id)
                    .order_by(CustomerStream.opened_at.desc(), CustomerStream.id)
                )
            )
            s.add(CustomerStream(id=stream_id, call_id=call_id, opened_at=now))
            victims = older[self.per_call - 1:]
            if victims:
                s.execute(delete(CustomerStream).where(CustomerStream.id.in_(victims)))
        return stream_id

    def is_open(self, s, stream_id: str) -> bool:
        """Inside the caller's read: whether the stream still has its row."""
        return s.get(CustomerStream, stream_id) is not None

    def close(self, stream_id: str) -> None:
        with self.db.transaction() as s:
            s.execute(delete(CustomerStream).where(CustomerStream.id == stream_id))
