"""Phone Agent B (docs/architecture.md §3): dial them, brief them by text-to-speech, act on their key press
and on every progress report Twilio sends about their call.

The webhooks that drive this arrive from Twilio at any time, repeated or out of order. Each is
one transaction that first records what Twilio said about the leg (its SID, its furthest
progress) and then applies at most one conditional transition, so a duplicate or late callback
finds nothing left to do. Nothing here waits on the LLM (the summary was stored when the
transfer began) or on a phone (Twilio calls us back).

Outcomes for Agent A (reason_code in the event):
  machine or fax answered -> no_answer (machine)  | busy -> busy          | no-answer -> no_answer
  failed -> failed (Twilio's ErrorCode kept)       | canceled -> cancelled (cancelled by someone else)
  9 -> declined (key_9) | no key -> declined (no_input) | hung up unanswered-by-key -> declined (hung_up)
  completed before anyone picked up -> no_answer   | dial refused -> failed (dial_failed)
  bridge into LiveKit failed -> failed (bridge_failed, with LiveKit SIP's response code)

Dialling is a task (`twilio.dial_agent_b`): initiate-transfer answers at once and the worker
places the call; a refusal reaches Agent A as `transfer_failed` with Twilio's error code.
"""
from __future__ import annotations

import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

import twiml
from app import logs, metrics, states
from app.db import Database
from app.errors import TelephonyNotConfigured, TwilioError, ValidationFailed
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Agent, Transfer, utcnow
from app.repo import claim_agent, load_call, load_transfer, mark_notified, require_transition
from app.services import effects
from app.services.calls import CallService
from app.services.phone_legs import PhoneLegs, leg_answered
from app.services.routing import drain_queue
from app.services.sip_diagnostics import bridge_failure_reason
from app.services.summaries import SummaryStore
from app.services.transfer_rules import end_transfer, owner_left
from app.services.twilio_urls import WebhookUrls

log = logging.getLogger(__name__)
T = states.TransferStatus

# Twilio's AnsweredBy values for anything that is not a person (with MachineDetection=Enable).
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
# The reason_code of a transfer ended because a machine answered (status no_answer; app.services.stats
# counts it apart).
MACHINE_REASON_CODE = "machine"
BRIDGE_INTRO = "Connecting you to the agent now."
INVALID_KEY = "That key is not an option."
BRIDGE_LOST = "We could not connect you to the caller. They will be helped by the next agent. Goodbye."
REASON_MAX = 255


class PhoneTransfers:
    def __init__(self, db: Database, livekit: LiveKitGateway, summaries: SummaryStore, settings, legs: PhoneLegs, calls: CallService):
        self.db = db
        self.livekit = livekit
        self.summaries = summaries
        self.settings = settings
        self.legs = legs
        self.calls = calls

    # -- placing the call (the worker, after the transfer row committed) ------------------------
    def dial(self, transfer_id: str, attempt: int = 1) -> str:
        """Place Agent B's call. Returns what happened: dialled | failed | skipped."""
        with self.db.reading() as s:
            t = load_transfer(s, transfer_id)
            number, status, sid, requested_at = t.to_phone, t.status, t.twilio_call_sid, t.requested_at
        if status not in states.TRANSFER_OPEN:
            return "skipped"  # cancelled (or the caller left) before the worker got to it
        if sid is not None:
            return "skipped"  # a status callback already reported the leg: it was placed
        if attempt > 1:
            # The first attempt died mid-request (the worker was killed). Whether Twilio placed the
            # call is unknown and dialling again could ring Agent B twice: end the transfer. If the
            # call was placed after all, its first status callback finds the transfer over and
            # cancels it (`leg_progress`).
            with self.db.transaction() as s:
                end_transfer(s, load_transfer(s, transfer_id), "fail", reason="The call to Agent B could not be confirmed; try again.",
                             reason_code="dial_failed", legs=self.legs)
            return "failed"
        urls = WebhookUrls(self.settings.PUBLIC_BASE_URL)
        try:
            gateway = self.legs.check_can_dial(number)
            sid = gateway.place_call(
                number,
                answer_url=urls.transfer_answer(transfer_id),
                status_callback_url=urls.transfer_status(transfer_id),
                ring_timeout_s=self.settings.TRANSFER_RING_TIMEOUT_S,
            )
        except (TwilioError, TelephonyNotConfigured, ValidationFailed) as err:
            code = str(err.twilio_code) if getattr(err, "twilio_code", None) else None
            with self.db.transaction() as s:
                end_transfer(s, load_transfer(s, transfer_id), "fail", reason=err.message[:REASON_MAX], error_code=code, reason_code="dial_failed")
            return "failed"
        # Agent B is being told: Twilio has the call to their phone (this task runs once per
        # transfer, never retried, so this is observed once; `notified_at` is set once anyway).
        now = utcnow()
        metrics.TRANSFER_NOTIFY.labels("phone").observe(metrics.seconds_since(requested_at, now))
        with self.db.transaction() as s:
            self._record_leg(s, transfer_id, sid, "queued")
            mark_notified(s, transfer_id, now)
            t = load_transfer(s, transfer_id)
            if t.status not in states.TRANSFER_OPEN:
                self.legs.schedule_teardown(s, t)  # cancelled (or the caller left) while Twilio was still answering us
        return "dialled"

    # -- Twilio: Agent B picked up --------------------------------------------------------------
    def answer(self, transfer_id: str, call_sid: str, answered_by: str | None, urls: WebhookUrls):
        with self.db.transaction() as s:
            t = self._leg_of(s, transfer_id, call_sid)
            if t is None:
                return twiml.transfer_unavailable(self.legs.voice)
            self._record_leg(s, t.id, call_sid, "in-progress")
            if t.status == T.BRIEFING:
                return self._bridge(t)  # Twilio retried the request after we had answered it
            if t.status != T.RINGING:
                return self._gone(t)
            if answered_by in MACHINE_ANSWERS:
                reason = f"Voicemail or a machine answered Agent B's phone ({answered_by}); nothing was read to it."
                end_transfer(s, t, "no_answer", reason=reason, reason_code=MACHINE_REASON_CODE)
                response = twiml.hang_up()
            else:
                response = self._briefing(s, t, urls)
        return response

    # -- Twilio: the key Agent B pressed (or none) ------------------------------------------------
    def gather(self, transfer_id: str, call_sid: str, digits: str | None, urls: WebhookUrls):
        digits = (digits or "").strip()
        with self.db.transaction() as s:
            t = self._leg_of(s, transfer_id, call_sid)
            if t is None:
                return twiml.transfer_unavailable(self.legs.voice)
            if t.status == T.BRIEFING and digits == twiml.DIGIT_ACCEPT:
                return self._bridge(t)  # a retried "1"
            if t.status != T.RINGING:
                return self._gone(t)
            if digits == twiml.DIGIT_ACCEPT:
                if t.to_agent_id and not claim_agent(s, t.to_agent_id, t.call_id):
                    end_transfer(s, t, "decline", reason="Agent B is already on another call.", reason_code="agent_busy")
                    response = twiml.transfer_unavailable(self.legs.voice)
                else:
                    require_transition(s, "transfer", t.id, "accept", answered_at=utcnow())
                    payload = {"transfer_id": t.id, "to_agent_id": t.to_agent_id, "to_phone": t.to_phone, "channel": "phone"}
                    emit(s, "transfer_accepted", payload, audiences=[t.from_agent_id], call_id=t.call_id)
                    response = self._bridge(t)
            elif digits == twiml.DIGIT_REPEAT:
                response = self._briefing(s, t, urls)
            elif digits == twiml.DIGIT_DECLINE:
                end_transfer(s, t, "decline", reason="Agent B declined by pressing 9.", reason_code="key_9")
                response = twiml.transfer_declined(self.legs.voice)
            elif not digits:
                end_transfer(s, t, "decline", reason="Agent B did not press a key after the summary.", reason_code="no_input")
                response = twiml.no_selection(self.legs.voice)
            else:
                response = self._briefing(s, t, urls, notice=INVALID_KEY)
        return response

    # -- Twilio: call progress of Agent B's leg ---------------------------------------------------
    def leg_progress(self, transfer_id: str, call_sid: str, status: str, *, error_code: str | None = None,
                     error_message: str | None = None, sip_response_code: int | None = None) -> None:
        if status not in states.LEG_RANK:
            log.warning("ignoring unknown CallStatus %r for transfer %s", status, transfer_id)
            return
        with self.db.transaction() as s:
            t = self._leg_of(s, transfer_id, call_sid)
            if t is None:
                return
            self._record_leg(s, t.id, call_sid, status)
            if status not in states.LEG_FINAL:
                if t.status not in states.TRANSFER_OPEN and t.reason_code == "dial_failed":
                    self.legs.schedule_teardown(s, load_transfer(s, t.id))  # our request timed out but Twilio dialled anyway
            elif t.status in states.TRANSFER_OPEN:
                event, reason, reason_code = self._outcome(t, status, error_code, error_message)
                end_transfer(s, t, event, reason=reason[:REASON_MAX], reason_code=reason_code,
                             error_code=error_code if status == "failed" else None, sip_response_code=sip_response_code, legs=self.legs)
            elif t.handed_over_at is not None:
                self._owner_hung_up(s, t)
        drain_queue(self.db)

    def _outcome(self, t: Transfer, status: str, error_code: str | None, error_message: str | None) -> tuple[str, str, str]:
        if t.status == T.BRIEFING or (status == "completed" and leg_answered(t)):
            return "decline", "Agent B hung up before taking the call.", "hung_up"
        if status == "busy":
            return "busy", "Agent B's line was busy.", "busy"
        if status == "no-answer":
            return "no_answer", f"Agent B did not answer within {self.settings.TRANSFER_RING_TIMEOUT_S} seconds.", "no_answer"
        if status == "failed":
            detail = error_message or "no detail from Twilio"
            suffix = f" (error {error_code})" if error_code else ""
            return "fail", f"Twilio could not connect the call to Agent B: {detail}{suffix}.", "call_failed"
        if status == "canceled":
            return "cancel", "The call to Agent B was cancelled outside the app before it was answered.", "leg_canceled"
        return "no_answer", "Agent B's call ended before anyone answered.", "no_answer"

    def _owner_hung_up(self, s: Session, t: Transfer) -> None:
        """Agent B took the customer on this phone leg and has now hung up: the call is over,
        unless the call has moved on since (another transfer completed after this one)."""
        call = load_call(s, t.call_id)
        later = s.scalar(
            select(Transfer.id).where(Transfer.call_id == t.call_id, Transfer.handed_over_at > t.handed_over_at).limit(1)
        )
        if later is None and call.agent_id == t.to_agent_id and not states.is_terminal("call", call.status):
            self.calls.finish(s, call, reason="agent_b_hung_up", by_customer=False)

    # -- Agent B's <Dial><Sip> ended (the bridge webhook) ---------------------------------------
    def bridge_ended(self, transfer_id: str, call_sid: str, dial_status: str, sip_code: int | None, *, into_call: bool):
        """Twilio reports how Agent B's bridge into LiveKit ended; answers TwiML for Agent B's leg.

        A bridge that never connected is a typed failure for Agent A (with LiveKit SIP's response
        code). A bridge that ended normally means its room closed: the transfer (or, after the
        hand-over, the call) is over, and Agent B is told so. Twilio also requests this URL when
        the leg is redirected (completion moves it); it ignores what we answer then."""
        voice = self.legs.voice
        with self.db.transaction() as s:
            t = self._leg_of(s, transfer_id, call_sid)
            if t is None:
                return twiml.hang_up()
            failed = dial_status in ("busy", "no-answer", "failed")
            if not into_call:
                if t.status == T.BRIEFING and failed:
                    reason = bridge_failure_reason("Agent B's phone could not be connected to you", dial_status, sip_code)
                    end_transfer(s, t, "fail", reason=reason[:REASON_MAX], reason_code="bridge_failed", sip_response_code=sip_code, legs=None)
                    return twiml.transfer_unavailable(voice)
                if t.status == T.BRIEFING or t.handed_over_at is not None:
                    return twiml.hang_up()  # a redirect (the hand-over) interrupted this dial
                return self._gone(t)
            call = load_call(s, t.call_id)
            if failed and t.handed_over_at is not None and call.agent_id == t.to_agent_id and not states.is_terminal("call", call.status):
                # Agent B cannot reach the customer after all: the customer goes to the next agent.
                reason = bridge_failure_reason("Agent B's phone could not be connected to the customer", dial_status, sip_code)
                log.warning("transfer %s: %s", t.id, reason)
                owner_left(s, call, call.agent_id, legs=self.legs)
                return twiml.say_and_hang_up(voice, BRIDGE_LOST)
            return twiml.call_ended(voice) if states.is_terminal("call", call.status) else twiml.hang_up()

    def move_failed(self, transfer_id: str) -> None:
        """The worker could not redirect Agent B's leg into the customer's room because the leg
        had already ended (Twilio 21220): Agent B hung up at the hand-over; the call ends as if
        they had hung up a moment later."""
        with self.db.transaction() as s:
            t = load_transfer(s, transfer_id)
            if t.handed_over_at is not None:
                self._owner_hung_up(s, t)
            effects.delete_room(s, t.transfer_room)
        drain_queue(self.db)

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _leg_of(s: Session, transfer_id: str, call_sid: str) -> Transfer | None:
        """The phone transfer this webhook is about; None for an unknown id or a foreign call."""
        t = s.get(Transfer, transfer_id, populate_existing=True)
        if t is None or not t.to_phone or not call_sid:
            return None
        logs.bind(call_id=t.call_id)
        if t.twilio_call_sid and t.twilio_call_sid != call_sid:
            log.warning("transfer %s: callback for call %s, but its leg is %s", transfer_id, call_sid, t.twilio_call_sid)
            return None
        return t

    @staticmethod
    def _record_leg(s: Session, transfer_id: str, call_sid: str, status: str) -> None:
        """Remember the leg's SID (first report wins) and move its status forward, never back."""
        s.execute(
            update(Transfer)
            .where(Transfer.id == transfer_id, Transfer.twilio_call_sid.is_(None))
            .values(twilio_call_sid=call_sid)
            .execution_options(synchronize_session=False)
        )
        s.execute(
            update(Transfer)
            .where(Transfer.id == transfer_id, or_(Transfer.leg_status.is_(None), Transfer.leg_status.in_(states.leg_statuses_below(status))))
            .values(leg_status=status)
            .execution_options(synchronize_session=False)
        )

    def _briefing(self, s: Session, t: Transfer, urls: WebhookUrls, notice: str | None = None):
        call = load_call(s, t.call_id)
        summary = self.summaries.by_id(s, t.summary_id)
        from_agent = s.scalar(select(Agent.name).where(Agent.id == t.from_agent_id)) or ""
        return twiml.agent_briefing(
            voice=self.legs.voice,
            from_agent=from_agent,
            customer_name=call.customer_name,
            summary=summary.speech if summary is not None else "",
            gather_url=urls.transfer_gather(t.id),
            notice=notice,
        )

    def _bridge(self, t: Transfer):
        if self.legs.trunk is None:
            return twiml.internal_error(self.legs.voice)
        return self.legs.bridge(t, t.transfer_room, intro=BRIDGE_INTRO, into_call=False)

    def _gone(self, t: Transfer):
        voice = self.legs.voice
        if t.status == T.CANCELLED:
            return twiml.transfer_cancelled(voice)
        if t.status == T.CALLER_LEFT:
            return twiml.caller_left(voice)
        return twiml.transfer_unavailable(voice)
