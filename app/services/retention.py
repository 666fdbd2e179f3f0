"""Bounded growth: finished calls, spent agent sessions and old events are deleted after a
retention period.

Run by the worker's periodic jobs (app.worker.tasks). Every deletion is in batches, each batch
its own short transaction, so no pass holds a lock for long however large the backlog. Candidates
are looked for in a read transaction first and the write transaction re-checks them: a pass with
nothing to delete (nearly every pass) never takes SQLite's write lock.

A call is deleted only when nothing live can need it: its status is final (completed, abandoned,
failed; `transferred` is Agent B's live call), it ended more than CALL_RETENTION_DAYS ago, no
agent still holds it as their call, and it has no open transfer. Its dependent rows go with it,
children first (transfers point at summaries, everything points at the call): transfers,
summaries, context entries, its events (the call's timeline and notifications about it), and
any leftover leases and customer stream rows. A call that still has a recording is kept until the recording has been deleted
at Twilio (app.services.recordings deletes those of calls past CALL_RETENTION_DAYS first): deleting
the row alone would leave the audio at Twilio with nothing pointing at it. Tasks that mention it are left to their own retention (TASK_RETENTION_DAYS);
their handlers treat a call that is gone as nothing left to do.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from app import states
from app.db import Database
from app.models import (
    Agent,
    AgentSession,
    Call,
    ContextEntry,
    CustomerStream,
    Event,
    HoldLease,
    Recording,
    Summary,
    SummaryLease,
    Supervision,
    Transfer,
    TransferOffer,
    utcnow,
)

# A call brings hundreds of rows with it (context lines, events): a smaller batch of calls keeps
# each transaction about as large as a batch of sessions.
CALL_BATCH = 200
SESSION_BATCH = 5000


def prune_sessions(db: Database, retention_days: int, *, batch: int = SESSION_BATCH, now: datetime | None = None) -> int:
    """Delete sessions that expired, or were revoked, more than `retention_days` ago. A session in
    use has neither (it expires in the future and is not revoked), so it is never touched."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    spent = or_(AgentSession.expires_at < cutoff, AgentSession.revoked_at < cutoff)
    return db.delete_in_batches(AgentSession, spent, batch=batch)


def prune_events(db: Database, retention_days: int, batch: int = 5000) -> int:
    """Delete events older than the retention period (they are also each call's timeline)."""
    cutoff = utcnow() - timedelta(days=retention_days)
    return db.delete_in_batches(Event, Event.created_at < cutoff, batch=batch, order_by=Event.id)


def expired_calls(retention_days: int, now: datetime | None = None):
    """Calls past their retention that nothing live needs (see the module's docstring)."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    held = exists().where(Agent.active_call_id == Call.id)
    open_transfer = exists().where(Transfer.call_id == Call.id, Transfer.status.in_(sorted(states.TRANSFER_OPEN)))
    return and_(
        Call.status.in_(sorted(states.CALL_TERMINAL)),
        func.coalesce(Call.ended_at, Call.created_at) < cutoff,
        ~held,
        ~open_transfer,
    )


def prunable_calls(retention_days: int, now: datetime | None = None):
    """The condition for a call that may be deleted now: expired, and no recording left."""
    return and_(expired_calls(retention_days, now), ~exists().where(Recording.call_id == Call.id))


def prune_calls(db: Database, retention_days: int, *, batch: int = CALL_BATCH, now: datetime | None = None) -> int:
    """Delete finished calls older than `retention_days`, with everything that belongs to them."""
    condition = prunable_calls(retention_days, now)
    deleted = 0
    while True:
        with db.reading() as s:
            candidates = list(s.scalars(select(Call.id).where(condition).order_by(Call.created_at).limit(batch)))
        if not candidates:
            return deleted
        with db.transaction() as s:
            # Checked again where it counts: in the transaction that deletes.
            ids = list(s.scalars(select(Call.id).where(Call.id.in_(candidates), condition)))
            if not ids:
                return deleted  # every candidate changed meanwhile; the next pass looks again
            _delete_calls(s, ids)
            deleted += len(ids)


# What belongs to a call, children before parents (a transfer points at its summary). Every table
# with a foreign key to calls must be here (tests/app/test_bounded_growth.py checks). Recordings
# are listed for completeness: `prunable_calls` excludes a call that has one, re-checked in the
# deleting transaction, so none is ever deleted here without its audio at Twilio.
# A customer's stream row left by a process that died has no foreign key, but belongs to its call all the same.
CALL_CHILDREN = (Transfer, Summary, ContextEntry, Event, SummaryLease, HoldLease, Recording, CustomerStream, Supervision)


def _delete_calls(s: Session, ids: list[str]) -> None:
    # A team transfer's offers belong to it (a grandchild of the call): they go first.
    offered = select(Transfer.id).where(Transfer.call_id.in_(ids))
    s.execute(delete(TransferOffer).where(TransferOffer.transfer_id.in_(offered)).execution_options(synchronize_session=False))
    for model in CALL_CHILDREN:
        s.execute(delete(model).where(model.call_id.in_(ids)).execution_options(synchronize_session=False))
    s.execute(delete(Call).where(Call.id.in_(ids)).execution_options(synchronize_session=False))
