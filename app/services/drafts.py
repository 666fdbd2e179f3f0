"""Draft summaries, refreshed in the background so one is ready before Agent A clicks transfer.

After context changes, a refresh is scheduled for that call once DRAFT_DEBOUNCE_S of quiet has
passed (a burst of transcript lines costs one LLM request, not one per line). Each worker keeps
its own schedule in memory — that is only a timer; the work and its result are durable:
a lease row in the database makes sure only one refresh per call runs at a time across all
workers and instances, and whoever finishes re-checks for context that arrived meanwhile.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from app import states
from app.db import Database
from app.events import emit
from app.models import Call, SummaryLease, utcnow
from app.repo import open_transfer
from app.serializers import summary_dict
from app.services.summaries import SummaryStore

log = logging.getLogger(__name__)


class DraftRefresher:
    def __init__(self, db: Database, store: SummaryStore, *, debounce_s: float, budget_s: float):
        self.db = db
        self.store = store
        self.debounce_s = debounce_s
        self.budget_s = budget_s
        self.lease_s = budget_s * 2 + 10
        self._due: dict[str, float] = {}
        self._cond = threading.Condition()
        self._pid: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._stopped = False

    # -- scheduling ------------------------------------------------------------------------
    def schedule(self, call_id: str) -> None:
        """Refresh `call_id`'s draft after a quiet period (restarted by every new change)."""
        self._ensure_started()
        with self._cond:
            self._due[call_id] = time.monotonic() + self.debounce_s
            self._cond.notify()

    def _ensure_started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._cond:
            if self._pid == os.getpid():
                return
            # After a fork the parent's timer thread and pool do not exist here: start our own.
            self._pid = os.getpid()
            self._due = {}
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="draft")
            threading.Thread(target=self._timer, name="draft-timer", daemon=True).start()

    def _timer(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                ready = [c for c, at in self._due.items() if at <= now]
                for call_id in ready:
                    del self._due[call_id]
                if not ready:
                    wait = min(self._due.values(), default=now + 60) - now
                    self._cond.wait(timeout=max(wait, 0.01))
                    continue
            for call_id in ready:
                self._pool.submit(self._refresh_logged, call_id)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._pool is not None and self._pid == os.getpid():
            self._pool.shutdown(wait=True, cancel_futures=True)

    # -- the work --------------------------------------------------------------------------
    def _refresh_logged(self, call_id: str) -> None:
        try:
            self.refresh(call_id)
        except Exception:  # a failed background refresh must not kill the pool; the next change retries
            log.exception("draft summary refresh failed for call %s", call_id)

    def refresh(self, call_id: str) -> int | None:
        """Bring the draft up to date now. Returns the new summary id, or None if nothing to do."""
        holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if not self._acquire(call_id, holder):
            return None  # another worker is on it, and re-checks for newer context when done
        try:
            with self.db.reading() as s:
                call = s.get(Call, call_id)
                if call is None or states.is_terminal("call", call.status):
                    return None
                newest = self.store.newest_entry_id(s, call_id)
                draft = self.store.latest(s, call_id, ("draft",))
                if draft is not None and draft.covering_entry_id >= newest and not draft.degraded:
                    return None
                data = self.store.input_for(s, call)
            result = self.store.summarizer.summarize(data, self.budget_s)
            with self.db.transaction() as s:
                row = self.store.save(s, call_id, result, kind="draft", covering_entry_id=newest)
                call = s.get(Call, call_id)
                audience = {call.agent_id}
                transfer = open_transfer(s, call_id)
                if transfer is not None:
                    audience.add(transfer.from_agent_id)
                emit(s, "summary_ready", {"summary": summary_dict(row)}, audiences=audience, call_id=call_id)
                summary_id = row.id
        finally:
            self._release(call_id, holder)
        with self.db.reading() as s:
            if self.store.newest_entry_id(s, call_id) > newest:
                self.schedule(call_id)
        return summary_id

    def _acquire(self, call_id: str, holder: str) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=self.lease_s)
        try:
            with self.db.transaction() as s:
                taken = s.execute(
                    update(SummaryLease)
                    .where(SummaryLease.call_id == call_id, SummaryLease.expires_at < now)
                    .values(holder=holder, expires_at=expires)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if taken:
                    return True
                if s.get(SummaryLease, call_id) is not None:
                    return False
                s.add(SummaryLease(call_id=call_id, holder=holder, expires_at=expires))
            return True
        except IntegrityError:
            return False  # another worker inserted the lease first

    def _release(self, call_id: str, holder: str) -> None:
        with self.db.transaction() as s:
            s.execute(delete(SummaryLease).where(SummaryLease.call_id == call_id, SummaryLease.holder == holder))
