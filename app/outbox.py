"""The transactional outbox: side effects and timers recorded as `tasks` rows.

Services call `enqueue()` inside the transaction that changes state, so a task exists if and only
if the change that causes it committed. Workers (`app.worker`) claim due tasks with a lease, run
them, and mark them done; retries, backoff and failure are recorded on the row. Why a plain table
rather than a task library: see docs/architecture.md ("Worker and tasks").

Claiming is one statement on both backends. PostgreSQL: `FOR UPDATE SKIP LOCKED` in the subquery,
so several workers claim different rows without waiting on each other. SQLite: every writing
transaction starts with BEGIN IMMEDIATE (app.db), so claims are simply serialised.

A task whose worker died (its lease passed without renewal) is claimable again; handlers are
idempotent, so running one twice has the effect of running it once.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Task, utcnow

# Claims and state changes go through the Core table, not the ORM: they run several hundred times
# a second under load, and the ORM's bulk-update machinery was most of the worker's CPU.
TASKS = Task.__table__

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "wt_tasks"
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
DEFAULT_MAX_ATTEMPTS = 10
ERROR_MAX = 2000

# Woken after a local commit that enqueued something (an in-process worker, in tests and
# `make run`'s single machine); other processes learn of it through NOTIFY or their next poll.
_local_wakers: list[Callable[[], None]] = []


def add_local_waker(fn: Callable[[], None]) -> None:
    _local_wakers.append(fn)


def remove_local_waker(fn: Callable[[], None]) -> None:
    if fn in _local_wakers:
        _local_wakers.remove(fn)


def _wake_local() -> None:
    for fn in list(_local_wakers):
        fn()


def worker_id() -> str:
    """Unique per process and start: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict
    attempts: int
    max_attempts: int
    due_at: datetime


def enqueue(
    s: Session,
    kind: str,
    payload: dict | None = None,
    *,
    due_at: datetime | None = None,
    delay_s: float = 0.0,
    dedupe_key: str | None = None,
    replace_due: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> None:
    """Record a task in the caller's transaction.

    With `dedupe_key`, at most one *pending* task of this kind has that key: a second enqueue
    keeps the pending one (`replace_due=False`) or replaces its payload and moves its due time
    later, never earlier (`replace_due=True`, a debounce: a task deliberately put off, like a
    draft refresh held for SUMMARY_REDRAFT_S, stays put off). A running task with the same key
    does not count: work that arrives while it runs gets a pending task of its own.
    """
    due = due_at or utcnow() + timedelta(seconds=delay_s)
    values = dict(kind=kind, dedupe_key=dedupe_key, payload=payload or {}, state=PENDING, due_at=due,
                  attempts=0, max_attempts=max_attempts, created_at=utcnow())
    if dedupe_key is None:
        s.add(Task(**values))
    else:
        dialect = s.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Task).values(**values)
        target = dict(index_elements=["kind", "dedupe_key"], index_where=text("state = 'pending'"))
        if replace_due:
            later = case((insert.excluded.due_at > TASKS.c.due_at, insert.excluded.due_at), else_=TASKS.c.due_at)
            stmt = insert.on_conflict_do_update(**target, set_={"due_at": later, "payload": values["payload"]})
        else:
            stmt = insert.on_conflict_do_nothing(**target)
        s.execute(stmt)
    _notify_at_commit(s)


def _notify_at_commit(s: Session) -> None:
    if s.info.get("wt_task_notify"):
        return
    s.info["wt_task_notify"] = True
    sa_event.listen(s, "after_commit", lambda _s: _wake_local(), once=True)
    if s.get_bind().dialect.name == "postgresql":
        # Delivered at commit to every worker LISTENing, so a task is picked up at once.
        s.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def claim(db: Database, holder: str, *, limit: int, lease_s: float, now: datetime | None = None,
          kinds: frozenset[str] | None = None, max_id: int | None = None) -> list[Claimed]:
    """Take up to `limit` due tasks (pending and due, or running with a lapsed lease); with
    `max_id`, only tasks up to that id."""
    if limit <= 0:
        return []
    now = now or utcnow()
    t = TASKS.c
    claimable = or_(and_(t.state == PENDING, t.due_at <= now), and_(t.state == RUNNING, t.lease_until < utcnow()))
    pick = select(t.id).where(claimable)
    if kinds is not None:
        pick = pick.where(t.kind.in_(sorted(kinds)))
    if max_id is not None:
        pick = pick.where(t.id <= max_id)
    pick = pick.order_by(t.due_at, t.id).limit(limit)
    if db.is_postgres:
        pick = pick.with_for_update(skip_locked=True)
    with db.transaction() as s:
        rows = s.connection().execute(
            TASKS.update()
            .where(t.id.in_(pick.scalar_subquery()))
            .values(state=RUNNING, claimed_by=holder, lease_until=utcnow() + timedelta(seconds=lease_s), attempts=t.attempts + 1)
            .returning(t.id, t.kind, t.payload, t.attempts, t.max_attempts, t.due_at)
        ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: (c.due_at, c.id))


def _mine(task_id: int, holder: str):
    return and_(TASKS.c.id == task_id, TASKS.c.state == RUNNING, TASKS.c.claimed_by == holder)


def finish(s: Session, task_id: int, holder: str) -> bool:
    """Inside a transaction: mark done. False if the lease was lost (another worker has it)."""
    return s.connection().execute(
        TASKS.update().where(_mine(task_id, holder)).values(state=DONE, finished_at=utcnow(), lease_until=None, last_error=None)
    ).rowcount == 1


def reschedule(db: Database, task_id: int, holder: str, due_at: datetime, *, error: str | None = None, count_attempt: bool = True) -> bool:
    """Back to pending at `due_at` (a retry after an error, or a timer that is not due yet)."""
    values = dict(state=PENDING, due_at=due_at, claimed_by=None, lease_until=None)
    if error is not None:
        values["last_error"] = error[:ERROR_MAX]
    if not count_attempt:
        values["attempts"] = TASKS.c.attempts - 1
    with db.transaction() as s:
        return s.connection().execute(TASKS.update().where(_mine(task_id, holder)).values(**values)).rowcount == 1


def fail(s: Session, task_id: int, holder: str, error: str) -> bool:
    """Inside a transaction: give up. The row stays, visible to `flask tasks list --failed`."""
    return s.connection().execute(
        TASKS.update().where(_mine(task_id, holder)).values(state=FAILED, finished_at=utcnow(), lease_until=None, last_error=error[:ERROR_MAX])
    ).rowcount == 1


def renew(db: Database, holder: str, task_ids: list[int], lease_s: float) -> int:
    """Extend the leases of tasks this worker is still running."""
    if not task_ids:
        return 0
    t = TASKS.c
    with db.transaction() as s:
        return s.connection().execute(
            TASKS.update().where(t.id.in_(task_ids), t.state == RUNNING, t.claimed_by == holder).values(lease_until=utcnow() + timedelta(seconds=lease_s))
        ).rowcount


def newest_id(db: Database) -> int:
    with db.reading() as s:
        return s.scalar(select(func.coalesce(func.max(Task.id), 0))) or 0


def next_due(db: Database, kinds: frozenset[str] | None = None) -> datetime | None:
    """When the earliest pending task falls due (None if there is none)."""
    t = TASKS.c
    with db.reading() as s:
        query = select(func.min(t.due_at)).where(t.state == PENDING)
        if kinds is not None:
            query = query.where(t.kind.in_(sorted(kinds)))
        return s.connection().execute(query).scalar()


# -- operators ----------------------------------------------------------------------------------
def list_tasks(db: Database, *, state: str | None = None, limit: int = 50) -> list[Task]:
    with db.reading() as s:
        query = select(Task).order_by(Task.id.desc()).limit(limit)
        if state is not None:
            query = query.where(Task.state == state)
        return list(s.scalars(query))


def retry_failed(db: Database, task_ids: list[int] | None = None) -> int:
    """Failed tasks back to pending with a fresh set of attempts (all of them, or these ids)."""
    with db.transaction() as s:
        query = update(Task).where(Task.state == FAILED)
        if task_ids is not None:
            query = query.where(Task.id.in_(task_ids))
        count = s.execute(
            query.values(state=PENDING, due_at=utcnow(), attempts=0, finished_at=None, claimed_by=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if count:
            _notify_at_commit(s)
        return count


def prune_finished(db: Database, done_days: int, failed_days: int, batch: int = 5000) -> int:
    """Delete done tasks after `done_days` and failed ones after `failed_days`."""
    now = utcnow()
    old = or_(
        and_(Task.state == DONE, Task.finished_at < now - timedelta(days=done_days)),
        and_(Task.state == FAILED, Task.finished_at < now - timedelta(days=failed_days)),
    )
    return db.delete_in_batches(Task, old, batch=batch)


def counts(db: Database) -> dict[str, int]:
    with db.reading() as s:
        return {state: n for state, n in s.execute(select(Task.state, func.count()).group_by(Task.state))}
