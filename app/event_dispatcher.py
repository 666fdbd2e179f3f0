"""Delivering events: one `Dispatcher` per web process reads new rows of the events table and
hands each to the in-memory subscriptions (SSE streams) of its audience.

The events themselves, written in the transaction of the change they describe, are the event
store's (app.events); this module only reads them. The reader polls every EVENT_POLL_INTERVAL_S,
is woken early by commits in the same process (app.events.on_local_commit) and, on PostgreSQL, by
NOTIFY from any process. SSE handlers only wait on their own queue; they never poll the database.
Because every process reads the shared table, an event written by any worker or instance reaches
every subscriber.

Ids come from the database; under PostgreSQL a transaction that took a lower id can commit after
one with a higher id. The dispatcher remembers such gaps for a while and picks the late rows up.
Periodic jobs are not run here: they are tasks of the worker (app.worker.tasks, PERIODIC).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

import psycopg
from sqlalchemy import or_, select

from app.db import Database
from app.errors import StreamsFull
from app.events import NOTIFY_CHANNEL, Delivered, delivered, newest_event_id, off_local_commit, on_local_commit
from app.models import Event

log = logging.getLogger(__name__)

GAP_PATIENCE_S = 15.0
GAP_SPAN = 10_000


class Subscription:
    """One waiting SSE handler: a private queue filled by the dispatcher, with the events of an
    agent (`audience`) or, for a web customer's status stream, every event about one call
    (`call_id`: any audience, each recipient's copy included), or, for a supervisor's floor
    stream, every event there is (`everything`)."""

    def __init__(self, audience: str | None = None, call_id: str | None = None, everything: bool = False):
        self.audience = audience
        self.call_id = call_id
        self.everything = everything
        self.queue: deque[Delivered] = deque(maxlen=10_000)
        self.ready = threading.Event()
        self.closed = False
        # Set when a client reads too slowly to keep up: its stream is then closed, and the
        # browser's reconnect (with Last-Event-ID) catches up from the database, losing nothing.
        self.overflowed = False

    def push(self, item: Delivered) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.overflowed = True
            self.ready.set()
            return
        self.queue.append(item)
        self.ready.set()

    def drain(self) -> list[Delivered]:
        self.ready.clear()
        items = []
        while self.queue:
            items.append(self.queue.popleft())
        return items


_local_dispatchers: list[Dispatcher] = []


def close_local_streams() -> None:
    """End every SSE stream in this process (graceful worker shutdown). Clients reconnect with
    Last-Event-ID to another worker and miss nothing."""
    for dispatcher in list(_local_dispatchers):
        dispatcher.close_streams()


class Dispatcher:
    """Per-process reader of the events table (periodic jobs run in the worker: app.worker)."""

    def __init__(self, db: Database, poll_interval: float, max_streams: int = 1_000_000):
        self.db = db
        self.poll_interval = poll_interval
        # Streams this process may hold (each holds a request thread): see SSE_THREAD_RESERVE.
        self.max_streams = max_streams
        self._subs: dict[str, set[Subscription]] = {}
        self._call_subs: dict[str, set[Subscription]] = {}
        self._every_subs: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._last_id: int | None = None
        self._gaps: dict[int, float] = {}
        _local_dispatchers.append(self)
        # A commit in this process wakes the reader at once instead of at the next poll.
        on_local_commit(self.poke)

    # -- lifecycle ---------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the reader thread in this process (again after a fork: threads don't survive)."""
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._subs = {}
            self._call_subs = {}
            self._every_subs = {}
            self._stop.clear()
            # Read the starting point now, not on the thread: a stream that asks for the high
            # water mark right after subscribing must never fall into a window the thread skips.
            with self.db.reading() as s:
                self._last_id = newest_event_id(s)
            self._thread = threading.Thread(target=self._run, name="event-dispatcher", daemon=True)
            self._thread.start()

    def close_streams(self) -> None:
        with self._lock:
            subs = [sub for groups in (self._subs, self._call_subs, self._every_subs) for group in groups.values() for sub in group]
        for sub in subs:
            sub.closed = True
            sub.ready.set()

    def stop(self) -> None:
        if self in _local_dispatchers:
            _local_dispatchers.remove(self)
        off_local_commit(self.poke)
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)
        self.close_streams()

    def poke(self) -> None:
        self._wake.set()

    @property
    def high_water(self) -> int:
        if self._last_id is None:
            with self.db.reading() as s:
                return newest_event_id(s)
        return self._last_id

    # -- subscriptions -----------------------------------------------------------------------
    def subscribe(self, audience: str) -> Subscription:
        """A queue of `audience`'s events from now on; StreamsFull if this process already holds
        as many streams as it may without starving its other requests of threads."""
        return self._add(Subscription(audience=audience))

    def subscribe_call(self, call_id: str) -> Subscription:
        """A queue of every event about `call_id` from now on (a customer's status stream); the
        same per-process limit as agents' streams: both hold request threads."""
        return self._add(Subscription(call_id=call_id))

    def subscribe_everything(self) -> Subscription:
        """A queue of every event from now on (a supervisor's floor stream, which only needs to
        know that something changed); the same per-process limit."""
        return self._add(Subscription(everything=True))

    def _add(self, sub: Subscription) -> Subscription:
        self.ensure_started()  # first: (re)starting replaces the subscription maps
        with self._lock:
            if self._count() >= self.max_streams:
                raise StreamsFull("This server has no room for another live event stream right now; updates come by polling.")
            groups, key = self._group_of(sub)
            groups.setdefault(key, set()).add(sub)
        return sub

    def _group_of(self, sub: Subscription) -> tuple[dict[str, set[Subscription]], str]:
        if sub.everything:
            return self._every_subs, ""
        return (self._subs, sub.audience) if sub.call_id is None else (self._call_subs, sub.call_id)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            groups, key = self._group_of(sub)
            subs = groups.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del groups[key]

    def _count(self) -> int:
        return sum(len(s) for groups in (self._subs, self._call_subs, self._every_subs) for s in groups.values())

    def subscriber_count(self) -> int:
        with self._lock:
            return self._count()

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        listener: psycopg.Connection | None = None
        while not self._stop.is_set():
            try:
                self._read_new()
            except Exception:  # the loop must outlive a DB blip; the error is logged, then retried
                log.exception("event dispatcher iteration failed")
                self._stop.wait(1.0)
            if self.db.is_postgres:
                listener = self._wait_for_notify(listener)
            else:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        if listener is not None:
            listener.close()

    def _wait_for_notify(self, listener: psycopg.Connection | None) -> psycopg.Connection | None:
        """PostgreSQL: sleep until a commit anywhere sends NOTIFY, or the poll interval passes
        (the poll still catches anything a dropped listener connection missed)."""
        try:
            if listener is None or listener.closed:
                listener = self.db.listener()
                listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            for _ in listener.notifies(timeout=self.poll_interval, stop_after=1):
                break
            return listener
        except psycopg.Error as err:
            log.warning("event listener connection failed (%s); polling until it is back", err)
            if listener is not None:
                listener.close()
            self._stop.wait(self.poll_interval)
            return None

    def _read_new(self) -> None:
        with self.db.reading() as s:
            cond = Event.id > self._last_id
            if self._gaps:
                cond = or_(cond, Event.id.in_(list(self._gaps)))
            rows = [delivered(r) for r in s.scalars(select(Event).where(cond).order_by(Event.id).limit(5000))]
        now = time.monotonic()
        for row in rows:
            self._gaps.pop(row.id, None)
            if row.id > self._last_id:
                # Only ids a transaction still in flight may hold are worth waiting for, and those
                # are close below the newest. A long jump is no such gap: a dispatcher that
                # started on an empty (pruned) table at 0 sees ids continue far above it.
                for missing in range(max(self._last_id + 1, row.id - GAP_SPAN), row.id):
                    self._gaps.setdefault(missing, now)
                self._last_id = row.id
            self._deliver(row)
        for gap_id, since in list(self._gaps.items()):
            if now - since > GAP_PATIENCE_S:  # a rolled-back transaction: that id never comes
                del self._gaps[gap_id]

    def _deliver(self, row: Delivered) -> None:
        with self._lock:
            subs = list(self._subs.get(row.audience, ())) if row.audience is not None else []
            if row.call_id is not None:
                subs += self._call_subs.get(row.call_id, ())
            subs += self._every_subs.get("", ())
        for sub in subs:
            sub.push(row)
