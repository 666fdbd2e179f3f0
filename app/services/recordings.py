"""Recordings of phone callers (RECORDING_ENABLED; docs/architecture.md §3 "Recording").

Twilio records the caller's `<Dial>` into LiveKit (twiml.sip.DialRecording) and reports each
recording to `/twilio/recording` once it is processed: `completed` (the file is there) or
`absent` (too short, error 16101; silent, 16102; "Getting Started with Recording Status
Callbacks", Twilio support). The callback's `CallSid` "always refers to the parent leg of a
two-leg call" (TwiML `<Recording>` docs, recordingStatusCallback parameters), i.e. the caller's
own call, which is how the recording finds its call. Twilio retries a callback it got no answer
to, so storing one is idempotent: keyed by RecordingSid, and a status only ever moves forward.

The audio stays at Twilio. Agents who may read the call (CallService.can_view: for a finished
call, every agent who took part) hear it through the app: the web process fetches the media
with the account's credentials and streams it on, so no Twilio URL or credential reaches a
browser. That fetch is the one Twilio REST request a web process makes; it is made after the
read transaction has closed and bounded by TWILIO_TIMEOUT_S.

Retention: a recording is deleted at Twilio and then here RECORDING_RETENTION_DAYS after it was
made (0: never for its age), and in any case before its call is deleted (CALL_RETENTION_DAYS:
app.services.retention keeps a call while it has a recording). A recording Twilio no longer has
(404) counts as deleted.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Database
from app.errors import Conflict, Forbidden, NotFound, TelephonyNotConfigured, TwilioError, TwilioUnavailable
from app.models import Call, Recording, utcnow
from app.repo import load_call
from app.services.retention import expired_calls

log = logging.getLogger(__name__)

IN_PROGRESS, COMPLETED, ABSENT, FAILED = "in-progress", "completed", "absent", "failed"
# RecordingStatus values (Twilio: in-progress, completed, absent, and failed with encrypted
# recordings), and how far along each is: a callback never moves a recording back.
_RANK = {IN_PROGRESS: 0, COMPLETED: 1, ABSENT: 1, FAILED: 1}
NO_MEDIA = frozenset({ABSENT, FAILED})
PRUNE_BATCH = 100


@dataclass(frozen=True)
class RecordingReport:
    """One recordingStatusCallback, read."""

    call_sid: str
    recording_sid: str
    status: str
    duration_s: int | None
    channels: int | None
    source: str | None
    error_code: str | None
    started_at: datetime | None


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def _rfc2822(value: str | None) -> datetime | None:
    """RecordingStartTime is RFC 2822 ("Tue, 10 Jun 2025 17:21:09 +0000"); None if it is not."""
    try:
        parsed = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def parse_callback(params: Mapping[str, str]) -> RecordingReport | None:
    """The recording a callback reports (parameter names: TwiML `<Recording>`/`<Dial>` docs,
    "recordingStatusCallback"), or None if it names no call, no recording or an unknown status."""
    call_sid, sid, status = params.get("CallSid") or "", params.get("RecordingSid") or "", params.get("RecordingStatus") or ""
    if not call_sid or not sid or len(sid) > 64 or status not in _RANK:
        return None
    error = (params.get("ErrorCode") or "").strip()
    return RecordingReport(
        call_sid=call_sid,
        recording_sid=sid,
        status=status,
        duration_s=_int(params.get("RecordingDuration")),
        channels=_int(params.get("RecordingChannels")),
        source=(params.get("RecordingSource") or None) and params["RecordingSource"][:32],
        error_code=error[:16] if error and error != "0" else None,
        started_at=_rfc2822(params.get("RecordingStartTime")),
    )


def current_recording(s: Session, call_id: str) -> Recording | None:
    """The call's recording: its newest completed one, else its newest (in practice there is one:
    record-from-answer records only a bridge that was answered, and an answered bridge that ends
    ends the call)."""
    rows = list(s.scalars(select(Recording).where(Recording.call_id == call_id).order_by(Recording.created_at.desc(), Recording.sid)))
    return next((r for r in rows if r.status == COMPLETED), rows[0] if rows else None)


class RecordingService:
    def __init__(self, db: Database, twilio, calls):
        self.db = db
        self.twilio = twilio  # TwilioGateway | None
        self.calls = calls  # CallService: who may read a call

    # -- /twilio/recording -----------------------------------------------------------------------
    def reported(self, params: Mapping[str, str]) -> None:
        report = parse_callback(params)
        if report is None:
            log.warning("recording callback without a usable CallSid/RecordingSid/RecordingStatus (%s)", params.get("RecordingStatus"))
            return
        with self.db.reading() as s:
            call_id = s.scalar(select(Call.id).where(Call.twilio_call_sid == report.call_sid))
        if call_id is None:
            log.info("recording %s is for a call we do not know (%s); nothing stored", report.recording_sid, report.call_sid)
            return
        values = {
            "status": report.status, "duration_s": report.duration_s, "channels": report.channels, "source": report.source,
            "error_code": report.error_code, "started_at": report.started_at, "updated_at": utcnow(),
        }
        with self.db.transaction() as s:
            if s.get(Recording, report.recording_sid) is None:
                try:
                    with s.begin_nested():
                        s.execute(insert(Recording).values(sid=report.recording_sid, call_id=call_id, created_at=utcnow(), **values))
                    log.info("call %s: recording %s %s (%ss)", call_id, report.recording_sid, report.status, report.duration_s)
                    return
                except IntegrityError:
                    pass  # the same callback, delivered twice at once: the other request stored it; update below
            behind = [status for status, rank in _RANK.items() if rank <= _RANK[report.status]]
            s.execute(
                update(Recording)
                .where(Recording.sid == report.recording_sid, Recording.call_id == call_id, Recording.status.in_(behind))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    # -- GET /api/calls/<id>/recording -------------------------------------------------------------
    def media(self, agent_id: str, call_id: str):
        """The call's recording, open at Twilio for streaming (app.gateways.twilio.RecordingMedia)."""
        with self.db.reading() as s:
            call = load_call(s, call_id)
            if not self.calls.can_view(s, agent_id, call):
                raise Forbidden("You are not part of this call.")
            recording = current_recording(s, call.id)
            sid, status = (recording.sid, recording.status) if recording is not None else (None, None)
        # The read transaction is over: nothing is held while Twilio answers and the audio streams.
        if sid is None or status in NO_MEDIA:
            raise NotFound("This call has no recording." if sid is None else "Twilio made no recording of this call (too short or silent).",
                           code="no_recording")
        if status != COMPLETED:
            raise Conflict("The recording is still being processed by Twilio; try again shortly.", code="recording_not_ready")
        if self.twilio is None:
            raise TelephonyNotConfigured("TWILIO_* is not set, so recordings cannot be fetched.")
        media = self.twilio.recording_media(sid)
        if media is None:
            raise NotFound("The recording is no longer at Twilio.", code="no_recording")
        return media

    # -- retention ---------------------------------------------------------------------------------
    def prune(self, retention_days: int, call_retention_days: int, *, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
        """Delete, at Twilio then here, recordings older than `retention_days` (0: none for their
        age) and those of calls past `call_retention_days`. Twilio unreachable raises (the task is
        retried); a recording Twilio refuses to delete is logged and left for the next run."""
        now = now or utcnow()
        due = [Recording.call_id.in_(select(Call.id).where(expired_calls(call_retention_days, now)))]
        if retention_days:
            due.append(Recording.created_at < now - timedelta(days=retention_days))
        deleted, refused = 0, set()
        while True:
            with self.db.reading() as s:
                query = select(Recording.sid).where(or_(*due))
                if refused:
                    query = query.where(Recording.sid.not_in(sorted(refused)))
                sids = list(s.scalars(query.order_by(Recording.created_at).limit(batch)))
            if not sids:
                return deleted
            if self.twilio is None:
                log.warning("%d recording(s) are past retention but TWILIO_* is not set, so they cannot be deleted at Twilio", len(sids))
                return deleted
            for sid in sids:
                try:
                    self.twilio.delete_recording(sid)
                except TwilioUnavailable:
                    raise
                except TwilioError as err:
                    log.error("recording %s: Twilio refused to delete it (%s); kept, tried again next run", sid, err.message)
                    refused.add(sid)
                    continue
                with self.db.transaction() as s:
                    s.execute(delete(Recording).where(Recording.sid == sid).execution_options(synchronize_session=False))
                deleted += 1
