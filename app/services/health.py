"""Health: a cheap public yes/no, and the details for signed-in agents.

`GET /api/health` is for load balancers and uptime checks and answers anyone, so it must cost
almost nothing and say nothing an outsider could use: whether the database answers and is
migrated, read at most once per DB_CHECK_S per process, never LiveKit (a public route that calls
LiveKit on every request lets anyone load it through us), no URLs, no error text.

The details (`GET /api/health/details`, agents only) add LiveKit, asked at most once per
LIVEKIT_CHECK_S per process (the answer is kept and shown with its age), the summary provider,
telephony, live event streams and the task queue.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from app import outbox
from app.db import MIGRATIONS
from app.errors import ServiceUnavailable
from app.models import SchemaMigration, utcnow

DB_CHECK_S = 1.0
LIVEKIT_CHECK_S = 10.0


@dataclass(frozen=True)
class DbCheck:
    status: str  # ok | needs_migration | unavailable
    missing: tuple[int, ...] = ()
    error: str | None = None  # the exception's class name: details only

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class _Cached:
    """One value re-computed at most every `every_s` seconds; concurrent requests that find it
    stale while another thread is refreshing it get the old value instead of waiting."""

    every_s: float
    compute: Callable[[], object]
    clock: Callable[[], float]
    value: object = None
    at: float | None = None
    checked_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> object:
        if self.at is not None and self.clock() - self.at < self.every_s:
            return self.value
        if not self.lock.acquire(blocking=self.at is None):
            return self.value  # someone is refreshing it; the previous answer is fine meanwhile
        try:
            if self.at is None or self.clock() - self.at >= self.every_s:
                self.value = self.compute()
                self.at = self.clock()
                self.checked_at = utcnow()
            return self.value
        finally:
            self.lock.release()


class HealthMonitor:
    def __init__(self, services, *, clock: Callable[[], float] = time.monotonic):
        self.services = services
        self._db = _Cached(DB_CHECK_S, self._check_db, clock)
        self._livekit = _Cached(LIVEKIT_CHECK_S, self._check_livekit, clock)

    # -- public ---------------------------------------------------------------------------------
    def database(self) -> DbCheck:
        return self._db.get()

    def public(self) -> tuple[dict, int]:
        ok = self.database().ok
        return {"status": "ok" if ok else "degraded"}, (200 if ok else 503)

    def ready(self) -> tuple[dict, int]:
        """Can this process serve calls: database reachable and migrated, LiveKit reachable.
        Public like `public()` and as cheap: both answers come from the per-process caches, so
        a load balancer probing every second costs one LiveKit request per LIVEKIT_CHECK_S."""
        ok = self.database().ok and self._livekit.get()["status"] == "ok"
        return {"status": "ready" if ok else "not_ready"}, (200 if ok else 503)

    # -- agents only ----------------------------------------------------------------------------
    def details(self) -> dict:
        svc = self.services
        settings = svc.settings
        db = self.database()
        provider = svc.summaries.summarizer.provider
        db_body: dict = {"status": db.status, "backend": "sqlite" if svc.db.is_sqlite else "postgresql", "missing_migrations": list(db.missing)}
        if db.error:
            db_body["error"] = db.error
        livekit = dict(self._livekit.get(), url=settings.LIVEKIT_HTTP_URL, checked_at=self._livekit.checked_at.isoformat())
        return {
            "status": "ok" if db.ok else "degraded",
            "db": db_body,
            "livekit": livekit,
            "llm": {"provider": provider.name, "model": provider.model},
            "telephony": {
                "configured": settings.telephony_configured,
                "message": None if settings.telephony_configured else "Set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER to enable phone calls.",
            },
            "sse_subscribers": svc.dispatcher.subscriber_count(),
            "tasks": self._task_counts() if db.ok else None,
        }

    # -- the checks -----------------------------------------------------------------------------
    def _check_db(self) -> DbCheck:
        try:
            with self.services.db.reading() as s:
                applied = set(s.scalars(select(SchemaMigration.version)))
        except SQLAlchemyError as err:
            return DbCheck("unavailable", error=type(err).__name__)
        missing = tuple(v for v, _name, _fn in MIGRATIONS if v not in applied)
        return DbCheck("needs_migration" if missing else "ok", missing)

    def _check_livekit(self) -> dict:
        try:
            self.services.livekit.ping()
        except ServiceUnavailable as err:
            return {"status": "unavailable", "error": err.message}
        return {"status": "ok"}

    def _task_counts(self) -> dict[str, int] | None:
        try:
            counts = outbox.counts(self.services.db)
        except SQLAlchemyError:
            return None  # the database went away since its check; the db block says so next time
        return {state: counts.get(state, 0) for state in (outbox.PENDING, outbox.RUNNING, outbox.FAILED)}
