"""Context entries and summaries: storing what was said, and having a summary ready to hand over.

Context is redacted before it is stored (the original is kept only with STORE_RAW_CONTEXT), so
nothing downstream — summaries, events, LLM prompts — ever sees a card number.
"""
from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import states
from app.db import Database
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.events import emit
from app.models import Call, ContextEntry, Summary, Transfer, utcnow
from app.repo import open_transfer
from app.serializers import summary_dict
from app.services import effects
from app.services.audiences import call_audience
from app.services.teams import team_refs
from app.summaries.base import ContextLine, StructuredSummary, SummaryInput, SummaryResult, finish, render_speech_from_text
from app.summaries.redact import mentions_digits, redact, redact_across
from app.summaries.summarizer import Summarizer

CONTEXT_TEXT_MAX = 2000
# A number split across transcript utterances is looked for in the new utterance and the same
# speaker's previous SPLIT_LOOKBACK ones, if no older than SPLIT_WINDOW_S: a card read out in
# four groups with a pause after each is four utterances, and reading it takes well under
# half a minute; anything older is another part of the conversation.
SPLIT_LOOKBACK = 3
SPLIT_WINDOW_S = 30


class SummaryStore:
    def __init__(self, db: Database, summarizer: Summarizer, *, store_raw: bool, budget_s: float, draft_debounce_s: float | None = None):
        self.db = db
        self.summarizer = summarizer
        self.store_raw = store_raw
        self.budget_s = budget_s
        # New context schedules a draft refresh this long after the last change (a task, run by
        # the worker: app.services.drafts); None turns drafts off.
        self.draft_debounce_s = draft_debounce_s

    # -- context ---------------------------------------------------------------------------
    def add_entry(self, s: Session, call: Call, *, author: str, source: str, text: str, external_id: str | None = None) -> ContextEntry:
        clean = self._redact_utterance(s, call.id, author, text) if source == "transcript" else redact(text)
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
        if source != "system" and self.draft_debounce_s is not None:  # "call started" alone is nothing to summarise
            effects.refresh_draft(s, call.id, self.draft_debounce_s)
        return entry

    def _redact_utterance(self, s: Session, call_id: str, author: str, text: str) -> str:
        """A transcriber ends an utterance wherever the speaker pauses, and people pause while
        reading a card number out: "my card is 4111 1111" / "1111 1111 1111". Each half alone is
        no card, so the new utterance is redacted together with the same speaker's last few
        (other speakers' words in between do not matter: an agent's "mm-hmm" is no pause in the
        number). When a number spans them, the earlier entries are rewritten too.

        An earlier entry rewritten here has already gone out as a `context_added` event (and
        perhaps into a draft) with its share of the digits, which cannot be recalled. That is
        acceptable only because that share was redacted on its own when it was stored, so it was
        never a whole card or SSN; what is stored from now on has none of it."""
        if not mentions_digits(text):
            return redact(text)  # no digit, written or spoken: nothing to join, no query
        since = utcnow() - timedelta(seconds=SPLIT_WINDOW_S)
        earlier = list(
            s.scalars(
                select(ContextEntry)
                .where(
                    ContextEntry.call_id == call_id,
                    ContextEntry.author == author,
                    ContextEntry.source == "transcript",
                    ContextEntry.created_at >= since,
                )
                .order_by(ContextEntry.id.desc())
                .limit(SPLIT_LOOKBACK)
            )
        )[::-1]
        if not earlier:
            return redact(text)
        *rewritten, clean = redact_across([e.text for e in earlier] + [text])
        for entry, new_text in zip(earlier, rewritten, strict=True):
            if new_text != entry.text:
                if self.store_raw and entry.raw_text is None:
                    entry.raw_text = entry.text  # stored unchanged, so this was what was said
                entry.text = new_text
        return clean

    @staticmethod
    def entries(s: Session, call_id: str) -> list[ContextEntry]:
        return list(s.scalars(select(ContextEntry).where(ContextEntry.call_id == call_id).order_by(ContextEntry.id)))

    @staticmethod
    def newest_entry_id(s: Session, call_id: str) -> int:
        return s.scalar(select(func.coalesce(func.max(ContextEntry.id), 0)).where(ContextEntry.call_id == call_id)) or 0

    def input_for(self, s: Session, call: Call) -> SummaryInput:
        lines = tuple(ContextLine(e.author, e.source, e.text) for e in self.entries(s, call.id))
        return SummaryInput(call.customer_name, lines, team_refs(s))

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
        """What Agent A reviews: exactly what Agent B would be handed now, when there is one."""
        ready = self.ready_summary(s, call_id)
        return summary_dict(ready or self.latest(s, call_id, ("edited", "transfer", "draft")))

    def ready_summary(self, s: Session, call_id: str) -> Summary | None:
        """The newest summary that covers every context entry, whether Agent A's edit or a draft.
        An edit made before newer context gives way to a newer draft that includes it; an edit
        made after the last draft wins. Degraded (offline fallback) drafts are never handed over
        while a better one may still be made."""
        newest = self.newest_entry_id(s, call_id)
        rows = s.scalars(
            select(Summary)
            .where(Summary.call_id == call_id, Summary.kind.in_(("edited", "transfer", "draft")), Summary.covering_entry_id >= newest)
            .order_by(Summary.id.desc())
            .limit(5)
        )
        return next((r for r in rows if r.kind == "edited" or not r.degraded), None)

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
            owner = s.scalar(select(Call.agent_id).where(Call.id == call_id))
            return self.save(s, call_id, result, kind="transfer", covering_entry_id=covering, notify=[owner]).id

    def save(
        self,
        s: Session,
        call_id: str,
        result: SummaryResult,
        *,
        kind: str,
        covering_entry_id: int,
        edited_by: str | None = None,
        supersedes_id: int | None = None,
        notify: list[str | None] | None = None,
    ) -> Summary:
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
            # Agent A should know the summary is the offline fallback, and why.
            payload = {"summary": summary_dict(row), "degraded": True, "reason": result.degraded_reason}
            emit(s, "summary_ready", payload, audiences=notify or [], call_id=call_id)
        return row

    # -- review and edit (Agent A) ----------------------------------------------------------
    def history(self, s: Session, call_id: str) -> list[dict]:
        """Every version, newest first: drafts, the ones handed over, and Agent A's edits."""
        rows = s.scalars(select(Summary).where(Summary.call_id == call_id).order_by(Summary.id.desc()))
        return [dict(summary_dict(r), supersedes_id=r.supersedes_id) for r in rows]

    def current_or_new(self, call_id: str) -> Summary:
        """The summary Agent B would get now; generated (within the budget) if there is none yet."""
        with self.db.reading() as s:
            current = self.ready_summary(s, call_id)
            if current is not None:
                return current
        summary_id = self.for_transfer(call_id)
        with self.db.reading() as s:
            return s.get(Summary, summary_id)

    def edit(self, agent_id: str, call_id: str, *, text: str | None, structured: dict | None) -> Summary:
        """Agent A's edit becomes what Agent B sees and hears; the version it replaces is kept."""
        with self.db.reading() as s:
            call = s.get(Call, call_id)
            if call is None:
                raise NotFound(f"No call with session_id {call_id}.")
            if call.agent_id != agent_id:
                raise Forbidden("Only the agent handling the call can edit its summary.")
            if states.is_terminal("call", call.status):
                raise Conflict(f"Call {call_id} has ended ({call.status}).", code="call_ended")
        base = self.current_or_new(call_id)
        if structured is not None:
            try:
                parsed = StructuredSummary.model_validate(_redacted(structured))
            except ValidationError as err:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
                raise ValidationFailed(f"The summary does not match the schema: {problems}.") from None
            result = finish(parsed, "agent", None)
        else:
            clean = redact(text or "")
            speech = render_speech_from_text(clean)
            result = SummaryResult(StructuredSummary.model_validate(base.structured), clean, speech, "agent", None)
        with self.db.transaction() as s:
            row = self.save(s, call_id, result, kind="edited", covering_entry_id=base.covering_entry_id, edited_by=agent_id, supersedes_id=base.id)
            transfer = open_transfer(s, call_id)
            payload = {"summary": summary_dict(row)}
            if transfer is not None:
                # Not yet heard or read by Agent B: hand over the edited version instead.
                s.execute(update(Transfer).where(Transfer.id == transfer.id).values(summary_id=row.id))
                payload["transfer_id"] = transfer.id
            emit(s, "summary_ready", payload, audiences=call_audience(s, s.get(Call, call_id)), call_id=call_id)
            return row


def _redacted(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value
