"""Phone customers (docs/architecture.md §3): answer Twilio's voice webhook, keep the caller
bridged into `call_<id>` over SIP, store live transcription, and end the call when they hang up.

Twilio retries a webhook it got no answer to, so the inbound call is keyed by its CallSid (a
unique column): a retry finds the call it created and answers with the same TwiML. The webhook
only writes to the database (the call, its assignment, and a task that creates the LiveKit room:
LiveKit also creates it when the SIP leg arrives), so it answers whatever LiveKit, Twilio or the
LLM are doing. With no agent free the caller hears a hold message and hold music, and Twilio
comes back after each loop (`<Redirect>`), to be bridged once routing has found someone.

A bridge into LiveKit that fails before anyone has talked to the caller (LiveKit SIP's ringing
timeout, a busy or unreachable SIP service) sends the caller back to that hold loop instead of
hanging up on them: a caller is never dropped because of how long they waited.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

import twiml
from app import logs, states
from app.db import Database
from app.errors import TelephonyNotConfigured
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Call, ContextEntry
from app.repo import load_call
from app.serializers import entry_dict
from app.services.audiences import call_audience
from app.services.calls import CallService
from app.services.phone_legs import PhoneLegs
from app.services.phone_numbers import caller_id
from app.services.routing import drain_queue
from app.services.sip_diagnostics import bridge_failure_reason
from app.services.summaries import CONTEXT_TEXT_MAX, SummaryStore
from app.services.twilio_urls import WebhookUrls

log = logging.getLogger(__name__)
C = states.CallStatus

GREETING = "Thank you for calling. Connecting you to an agent."
GREETING_AFTER_HOLD = "Thank you for waiting. Connecting you to an agent now."
HOLD_MESSAGE = "All of our agents are busy right now. Please stay on the line and we will connect you as soon as one is free."
HOLD_REMINDER = "Thank you for holding."  # each later loop: short, so the line never sounds dead for long
# DialCallStatus values meaning the SIP bridge into LiveKit never connected.
BRIDGE_FAILED = frozenset({"busy", "no-answer", "failed", "canceled"})
# ...and those worth trying again from the hold loop: LiveKit SIP answers 486 when the caller has
# waited longer than the trunk's ringing timeout (pkg/sip/inbound.go), or nobody answered in time.
# A refusal (401/407 credentials, 404 no dispatch rule, 503) will not heal by waiting.
BRIDGE_RETRY_STATUSES = frozenset({"busy", "no-answer"})
BRIDGE_RETRY_SIP_CODES = frozenset({408, 480, 486})
TRACK_CUSTOMER = "inbound_track"  # on the caller's own call, inbound audio is the caller
# What Twilio itself says to the caller: when the transcription of the outbound track (what the
# caller hears) matches one of these, it is our prompt, not an agent's words.
OUR_PROMPTS = (GREETING, GREETING_AFTER_HOLD, HOLD_MESSAGE, HOLD_REMINDER)


def _normalised(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())


_PROMPTS = frozenset(_normalised(p) for p in OUR_PROMPTS)


@dataclass(frozen=True)
class Utterance:
    call_sid: str
    text: str
    track: str
    external_id: str


def parse_transcription(params: Mapping[str, str]) -> Utterance | None:
    """A final utterance from one of Twilio's real-time transcription events, else None.

    Only `transcription-content` events with `Final=true` carry text worth keeping; the text is
    the `transcript` field of the JSON in `TranscriptionData`. The idempotency key is the
    transcription's SID plus its `SequenceId`; an event missing either is keyed by a hash of
    what it says, so a redelivery is still recognised.
    """
    if params.get("TranscriptionEvent") != "transcription-content":
        return None
    if (params.get("Final") or "").strip().lower() != "true":
        return None
    call_sid = params.get("CallSid") or ""
    try:
        data = json.loads(params.get("TranscriptionData") or "")
    except ValueError:
        log.warning("transcription event for %s has unreadable TranscriptionData", call_sid)
        return None
    text = data.get("transcript") if isinstance(data, dict) else None
    if not call_sid or not isinstance(text, str) or not text.strip():
        return None
    track = params.get("Track") or ""
    sid, seq = params.get("TranscriptionSid") or "", params.get("SequenceId") or ""
    if sid and seq:
        key = sid + ":" + seq
    else:
        raw = "\x1f".join((call_sid, track, params.get("Timestamp") or "", text))
        key = "sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    return Utterance(call_sid, " ".join(text.split())[:CONTEXT_TEXT_MAX], track, key[:128])


class TelephonyService:
    def __init__(self, db: Database, livekit: LiveKitGateway, summaries: SummaryStore, calls: CallService, legs: PhoneLegs, settings):
        self.db = db
        self.livekit = livekit
        self.summaries = summaries
        self.calls = calls
        self.legs = legs
        self.transcription = settings.TRANSCRIPTION_ENABLED
        self.recording = settings.RECORDING_ENABLED
        self.recording_notice = settings.RECORDING_NOTICE.strip()
        # The notice is Twilio speaking on the outbound track too: not an agent's words.
        self._prompts = _PROMPTS | ({_normalised(self.recording_notice)} if self.recording_notice else set())

    # -- /twilio/voice -----------------------------------------------------------------------
    def inbound(self, call_sid: str, caller: str, urls: WebhookUrls, *, after_hold: bool = False):
        if self.legs.trunk is None:
            raise TelephonyNotConfigured("LIVEKIT_SIP_HOST is not set, so phone callers cannot be bridged to agents.")
        call = self._by_sid(call_sid)
        if call is None:
            call = self._create(call_sid, caller)
        elif call.status == C.QUEUED:
            drain_queue(self.db)  # fair: the oldest waiting caller gets the next free agent
            call = self._by_sid(call_sid)
        return self._route(call, urls, after_hold)

    def _create(self, call_sid: str, caller: str) -> Call:
        number = caller_id(caller)
        try:
            self.calls.open_call(
                channel="phone",
                customer_name="Caller " + number if number else "Unknown caller",
                first_note="Phone call from " + (number or "an unknown number"),
                room_now=False,
                twilio_call_sid=call_sid,
                caller_number=number,
            )
        except IntegrityError:
            # Twilio retried while the first request was still working: that one created the call.
            if self._by_sid(call_sid) is None:
                raise
        return self._by_sid(call_sid)

    def _route(self, call: Call, urls: WebhookUrls, after_hold: bool):
        voice = self.legs.voice
        if states.is_terminal("call", call.status):
            return twiml.call_ended(voice)
        holding = call.status == C.QUEUED
        if bool(call.in_hold_loop) != holding:
            with self.db.transaction() as s:
                s.execute(update(Call).where(Call.id == call.id).values(in_hold_loop=holding).execution_options(synchronize_session=False))
        if holding:
            return self._hold_loop(urls, after_hold)
        transcription = twiml.TranscriptionOptions(status_callback_url=urls.transcription) if self.transcription else None
        # Only the caller's own bridge is recorded: its two channels are the caller and the room,
        # whichever agent is talking there (Agent B's phone legs are not recorded on their own).
        recording = twiml.RecordingOptions(urls.recording, self.recording_notice) if self.recording else None
        return twiml.customer_bridge(
            voice=voice,
            greeting=GREETING_AFTER_HOLD if after_hold else GREETING,
            trunk=self.legs.trunk,
            room=call.room_name,
            call_id=call.id,
            dial_action_url=urls.dial_action,
            transcription=transcription,
            recording=recording,
        )

    def _hold_loop(self, urls: WebhookUrls, after_hold: bool):
        message = HOLD_REMINDER if after_hold else HOLD_MESSAGE
        return twiml.queued_hold(voice=self.legs.voice, message=message, redirect_url=urls.voice_after_hold, music_url=urls.hold_music)

    # -- /twilio/dial-action and /twilio/status ------------------------------------------------
    def dial_ended(self, call_sid: str, call_status: str, dial_status: str, urls: WebhookUrls, *, sip_code: int | None = None):
        """The caller's `<Dial>` into LiveKit is over: either they hung up, or the bridge ended."""
        call = self._by_sid(call_sid)
        if call is None:
            return twiml.hang_up()
        if call_status in states.LEG_FINAL:
            self.customer_gone(call_sid)
            return twiml.hang_up()  # Twilio ignores TwiML for a caller who has gone
        diagnostics = {"bridge_status": dial_status[:16] or None, "sip_response_code": sip_code}
        with self.db.transaction() as s:
            call = load_call(s, call.id)
            if states.is_terminal("call", call.status):
                return twiml.call_ended(self.legs.voice)  # the agent ended the call; its room is gone
            waiting = call.status in (C.QUEUED, C.RINGING)
            if waiting and (dial_status in BRIDGE_RETRY_STATUSES or sip_code in BRIDGE_RETRY_SIP_CODES):
                s.execute(update(Call).where(Call.id == call.id).values(in_hold_loop=True, **diagnostics).execution_options(synchronize_session=False))
                reason = bridge_failure_reason("The caller's line into LiveKit was not answered", dial_status, sip_code)
                log.warning("call %s: %s; the caller goes back to the hold loop", call.id, reason)
                retry = True
            else:
                failed = dial_status in BRIDGE_FAILED or call.status == C.QUEUED
                reason = "sip_bridge_" + dial_status.replace("-", "_") if dial_status in BRIDGE_FAILED else "bridge_ended"
                detail = bridge_failure_reason("The caller's line into LiveKit failed", dial_status, sip_code) if failed else None
                self.calls.finish(s, call, reason=reason, by_customer=False, failed=failed, diagnostics=diagnostics, detail=detail)
                retry = False
        if retry:
            return self._hold_loop(urls, after_hold=True)
        log.warning("call %s: bridge into LiveKit ended (DialCallStatus=%s, SIP %s) with the caller still on the line", call.id, dial_status, sip_code)
        drain_queue(self.db)
        return twiml.connection_lost(self.legs.voice)

    def call_progress(self, call_sid: str, call_status: str, *, error_code: str | None = None, sip_code: int | None = None) -> None:
        if call_status in states.LEG_FINAL:
            self.customer_gone(call_sid, error_code=error_code, sip_code=sip_code)

    def customer_gone(self, call_sid: str, *, error_code: str | None = None, sip_code: int | None = None) -> None:
        """The caller hung up, at whatever point: queued, ringing, talking, on hold, transferred."""
        call = self._by_sid(call_sid)
        if call is None:
            return
        diagnostics = {"error_code": error_code[:32]} if error_code else None
        with self.db.transaction() as s:
            self.calls.finish(s, load_call(s, call.id), reason="customer_hung_up", by_customer=True, diagnostics=diagnostics)
        drain_queue(self.db)

    # -- /twilio/transcription -------------------------------------------------------------------
    def transcribed(self, params: Mapping[str, str]) -> None:
        event = params.get("TranscriptionEvent")
        if event == "transcription-error":
            log.warning("transcription error on call %s: %s", params.get("CallSid"), params.get("TranscriptionError") or "no detail")
        utterance = parse_transcription(params)
        if utterance is None:
            return
        call = self._by_sid(utterance.call_sid)
        if call is None:
            return
        with self.db.transaction() as s:
            call = load_call(s, call.id)
            if utterance.track != TRACK_CUSTOMER and not self._agent_speech(call, utterance.text, self._prompts):
                return
            seen = select(ContextEntry.id).where(ContextEntry.call_id == call.id, ContextEntry.external_id == utterance.external_id)
            if s.scalar(seen) is not None:
                return  # a redelivery
            author = "customer" if utterance.track == TRACK_CUSTOMER else (call.agent_id or "agent")
            try:
                with s.begin_nested():
                    entry = self.summaries.add_entry(s, call, author=author, source="transcript", text=utterance.text, external_id=utterance.external_id)
            except IntegrityError:
                return  # the same event, delivered twice at once: the other request stored it
            emit(s, "context_added", {"entry": entry_dict(entry)}, audiences=call_audience(s, call), call_id=call.id)

    @staticmethod
    def _agent_speech(call: Call, text: str, prompts: frozenset[str] | set[str] = _PROMPTS) -> bool:
        """Whether an utterance on the outbound track (what the caller hears) is an agent talking.
        Not when no agent is talking to the caller (the greeting, the hold loop, hold audio), and
        not when it is one of our own prompts, which Twilio speaks on the same track."""
        if call.status not in (C.ACTIVE, C.TRANSFERRED):
            return False
        return _normalised(text) not in prompts

    def _by_sid(self, call_sid: str) -> Call | None:
        with self.db.reading() as s:
            call = s.scalar(select(Call).where(Call.twilio_call_sid == call_sid)) if call_sid else None
        if call is not None:
            logs.bind(call_id=call.id)  # the request's log lines are about this call from here on
        return call
