"""The event store: events are written in the same transaction as the state change they describe.

`emit()` adds one row per recipient agent (plus a timeline-only row when nobody is addressed)
inside the caller's transaction, so an event exists if and only if its change does. The rows are
at once each agent's notifications (`fetch_for_audience`, the polling route and an SSE stream's
backlog) and each call's timeline (`timeline`).

Delivering them live is the dispatcher's job (app.event_dispatcher): a commit here wakes the
dispatchers of this process (`on_local_commit`) and, on PostgreSQL, every process (NOTIFY).
Deleting old rows is housekeeping (app.services.retention.prune_events, a worker job).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Event
from app.protocol import EVENT_TYPES  # the wire contract owns the event types; kept importable from here

NOTIFY_CHANNEL = "wt_events"


@dataclass(frozen=True)
class Delivered:
    id: int
    audience: str | None
    call_id: str | None
    type: str
    payload: dict
    created_at: datetime

    def as_notification(self) -> dict:
        return {"id": self.id, "type": self.type, "payload": self.payload, "created_at": self.created_at.isoformat()}


def delivered(row: Event) -> Delivered:
    return Delivered(row.id, row.audience, row.call_id, row.type, row.payload, row.created_at)


# Called after any commit in this process that wrote events (the dispatchers' wake-up). A list of
# callbacks rather than an import of the dispatcher: the store must not depend on who reads it.
_local_commit_listeners: list[Callable[[], None]] = []


def on_local_commit(callback: Callable[[], None]) -> None:
    _local_commit_listeners.append(callback)


def off_local_commit(callback: Callable[[], None]) -> None:
    if callback in _local_commit_listeners:
        _local_commit_listeners.remove(callback)


def _local_commit() -> None:
    for callback in list(_local_commit_listeners):
        callback()


def emit(session: Session, type_: str, payload: dict, *, audiences: Iterable[str | None], call_id: str | None) -> None:
    """Record an event for each audience (agent id). Duplicates and None collapse sensibly."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    key = uuid.uuid4().hex
    recipients = sorted({a for a in audiences if a})
    body = dict(payload, session_id=call_id) if call_id else dict(payload)
    for audience in recipients or [None]:
        session.add(Event(event_key=key, audience=audience, call_id=call_id, type=type_, payload=body))
    if not session.info.get("wt_poke_registered"):
        session.info["wt_poke_registered"] = True
        sa_event.listen(session, "after_commit", lambda _s: _local_commit(), once=True)
        if session.get_bind().dialect.name == "postgresql":
            # Delivered at commit to every worker's dispatcher (LISTEN), so events written by
            # another process arrive without waiting for the next poll.
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def fetch_for_audience(db: Database, audience: str, after_id: int, limit: int) -> list[Delivered]:
    with db.reading() as s:
        rows = s.scalars(
            select(Event).where(Event.audience == audience, Event.id > after_id).order_by(Event.id).limit(limit)
        )
        return [delivered(r) for r in rows]


def timeline(session: Session, call_id: str) -> list[dict]:
    """Each emitted event once, oldest first (recipients' copies share an event_key)."""
    seen: set[str] = set()
    items = []
    for row in session.scalars(select(Event).where(Event.call_id == call_id).order_by(Event.id)):
        if row.event_key in seen:
            continue
        seen.add(row.event_key)
        items.append({"id": row.id, "type": row.type, "payload": row.payload, "created_at": row.created_at.isoformat()})
    return items


def newest_event_id(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(Event.id), 0))) or 0
