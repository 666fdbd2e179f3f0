"""Context entries and summaries: storing what was said, and having a summary ready to hand over.

Context is redacted before it is stored (the original is kept only with STORE_RAW_CONTEXT), so
nothing downstream — summaries, events, LLM prompts — ever sees a card number.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import Database
from app.events import emit
from app.models import Call, ContextEntry, Summary
from app.serializers import summary_dict
from app.summaries.base import ContextLine, SummaryInput, SummaryResult
from app.summaries.redact import redact
from app.summaries.service import Summarizer

CONTEXT_TEXT_MAX = 2000


class SummaryStore:
    def __init__(self, db: Database, summarizer: Summarizer, *, store_raw: bool, budget_s: float):
        self.db = db
        self.summarizer = summarizer
        self.store_raw = store_raw
        self.budget_s = budget_s

    # -- context ---------------------------------------------------------------------------
    def add_entry(self, s: Session, call: Call, *, author: str, source: str, text: str, external_id: str | None = None) -> ContextEntry:
        clean = redact(text)
        entry = ContextEntry(
            call_id=call.id,
            author=author,
            source=source,
            text=clean,
            raw_text=text if self.store_raw and clean != text else None,
            external_id=external_id,
        )
        s.add(entry)
        s.flush()
        return entry

    @staticmethod
    def entries(s: Session, call_id: str) -> list[ContextEntry]:
        return list(s.scalars(select(ContextEntry).where(ContextEntry.call_id == call_id).order_by(ContextEntry.id)))

    @staticmethod
    def newest_entry_id(s: Session, call_id: str) -> int:
        return s.scalar(select(func.coalesce(func.max(ContextEntry.id), 0)).where(ContextEntry.call_id == call_id)) or 0

    def input_for(self, s: Session, call: Call) -> SummaryInput:
        lines = tuple(ContextLine(e.author, e.source, e.text) for e in self.entries(s, call.id))
        return SummaryInput(call.customer_name, lines)

    # -- summaries -------------------------------------------------------------------------
    @staticmethod
    def by_id(s: Session, summary_id: int | None) -> Summary | None:
        return s.get(Summary, summary_id) if summary_id else None

    @staticmethod
    def latest(s: Session, call_id: str, kinds: tuple[str, ...]) -> Summary | None:
        return s.scalar(
            select(Summary).where(Summary.call_id == call_id, Summary.kind.in_(kinds)).order_by(Summary.id.desc()).limit(1)
        )

    def current_dict(self, s: Session, call_id: str) -> dict | None:
        return summary_dict(self.latest(s, call_id, ("edited", "transfer", "draft")))

    def ready_summary(self, s: Session, call_id: str) -> Summary | None:
        """A stored summary Agent B may be given as is: Agent A's edit, or a draft covering all context."""
        edited = self.latest(s, call_id, ("edited",))
        if edited is not None:
            return edited
        draft = self.latest(s, call_id, ("draft", "transfer"))
        if draft is not None and draft.covering_entry_id >= self.newest_entry_id(s, call_id) and not draft.degraded:
            return draft
        return None

    def for_transfer(self, call_id: str) -> int:
        """The id of the summary to hand over, generating one within the time budget if needed."""
        with self.db.reading() as s:
            ready = self.ready_summary(s, call_id)
            if ready is not None:
                return ready.id
            call = s.get(Call, call_id)
            data = self.input_for(s, call)
            covering = self.newest_entry_id(s, call_id)
        result = self.summarizer.summarize(data, self.budget_s)
        with self.db.transaction() as s:
            return self.save(s, call_id, result, kind="transfer", covering_entry_id=covering).id

    def save(self, s: Session, call_id: str, result: SummaryResult, *, kind: str, covering_entry_id: int, edited_by: str | None = None, supersedes_id: int | None = None) -> Summary:
        row = Summary(
            call_id=call_id,
            kind=kind,
            provider=result.provider,
            model=result.model,
            degraded=result.degraded,
            degraded_reason=result.degraded_reason,
            text=redact(result.text),
            speech=redact(result.speech),
            structured=result.structured.model_dump(),
            covering_entry_id=covering_entry_id,
            edited_by=edited_by,
            supersedes_id=supersedes_id,
        )
        s.add(row)
        s.flush()
        if result.degraded:
            emit(s, "summary_ready", {"summary_id": row.id, "degraded": True, "reason": result.degraded_reason}, audiences=[], call_id=call_id)
        return row
