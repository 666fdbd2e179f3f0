"""Draft summaries, refreshed in the background so one is ready before Agent A clicks transfer.

New context enqueues a `summary.refresh_draft` task for its call, due DRAFT_DEBOUNCE_S later;
further context before it runs only moves it later (a burst of transcript lines costs one LLM
request, not one per line). The worker runs it. A lease row makes sure only one refresh per call
runs at a time across all workers, and whoever finishes re-checks for context that arrived
meanwhile and schedules another refresh if so.

Speakers pause between utterances for longer than the debounce, so the debounce alone still
drafts once per utterance: a summary row and an LLM request each. The worker's refresh is therefore held until
SUMMARY_REDRAFT_S after the call's previous draft (checked under the lease, so it holds across
workers): at most one draft per SUMMARY_REDRAFT_S per call. The newest context still reaches
Agent B: a transfer uses the draft only if it covers every entry, and otherwise summarises anew
(SummaryStore.for_transfer).
"""
from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from app import states
from app.db import Database
from app.events import emit
from app.models import Call, Summary, SummaryLease, utcnow
from app.serializers import summary_dict
from app.services import effects
from app.services.summaries import SummaryStore

log = logging.getLogger(__name__)


class DraftRefresher:
    def __init__(self, db: Database, store: SummaryStore, *, debounce_s: float, budget_s: float, redraft_s: float = 0.0):
        self.db = db
        self.store = store
        self.debounce_s = debounce_s
        self.budget_s = budget_s
        self.redraft_s = redraft_s
        self.lease_s = budget_s * 2 + 10

    def schedule(self, call_id: str) -> None:
        """Refresh `call_id`'s draft after a quiet period (restarted by every new change)."""
        with self.db.transaction() as s:
            effects.refresh_draft(s, call_id, self.debounce_s)

    # -- the work --------------------------------------------------------------------------
    def _refresh_logged(self, call_id: str) -> None:
        try:
            self.refresh(call_id)
        except Exception:  # a failed background refresh must not kill the pool; the next change retries
            log.exception("draft summary refresh failed for call %s", call_id)

    def refresh(self, call_id: str, *, now: datetime | None = None) -> int | None:
        """Bring the draft up to date. Returns the new summary id, or None if nothing to do.

        With `now` (the worker's task), not before SUMMARY_REDRAFT_S after the previous draft: an
        earlier run puts the refresh off until then instead. Without it (an explicit request), now."""
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
                held_until = self._held_until(draft, now)
                if held_until is None:
                    data = self.store.input_for(s, call)
            if held_until is not None:
                with self.db.transaction() as s:
                    effects.refresh_draft_at(s, call_id, held_until)
                return None
            result = self.store.summarizer.summarize(data, self.budget_s)
            with self.db.transaction() as s:
                row = self.store.save(s, call_id, result, kind="draft", covering_entry_id=newest)
                call = s.get(Call, call_id)
                # A draft is the owner's working copy (during a transfer the owner is Agent A):
                # Agent B is given the version handed over, or Agent A's edit of it, never a draft.
                emit(s, "summary_ready", {"summary": summary_dict(row)}, audiences=[call.agent_id], call_id=call_id)
                summary_id = row.id
        finally:
            self._release(call_id, holder)
        with self.db.reading() as s:
            behind = self.store.newest_entry_id(s, call_id) > newest
        if behind:
            # Due when this call may be drafted again, not sooner (it would only be put off).
            with self.db.transaction() as s:
                effects.refresh_draft(s, call_id, max(self.debounce_s, self.redraft_s))
        return summary_id

    def _held_until(self, draft: Summary | None, now: datetime | None) -> datetime | None:
        """When the worker may draft this call again, if that is still ahead of `now`."""
        if now is None or draft is None:
            return None
        allowed = draft.created_at + timedelta(seconds=self.redraft_s)
        return allowed if allowed > now else None

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
