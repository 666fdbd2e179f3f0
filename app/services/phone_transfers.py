"""Phone Agent B (DESIGN §4.4): dial them, brief them by text-to-speech, act on their key press
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
"""
from __future__ import annotations

import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

import twiml
from app import states
from app.db import Database
from app.errors import Conflict, TwilioError
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Agent, Transfer, utcnow
from app.repo import claim_agent, load_call, load_transfer, require_transition
from app.services.calls import CallService
from app.services.phone_legs import LegAction, LegPlan, PhoneLegs, leg_answered
from app.services.summaries import SummaryStore
from app.services.transfer_rules import end_transfer
from app.services.twilio_urls import WebhookUrls

log = logging.getLogger(__name__)
T = states.TransferStatus

# Twilio's AnsweredBy values for anything that is not a person (with MachineDetection=Enable).
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
BRIDGE_INTRO = "Connecting you to the agent now."
INVALID_KEY = "That key is not an option."
REASON_MAX = 255


class PhoneTransfers:
    def __init__(self, db: Database, livekit: LiveKitGateway, summaries: SummaryStore, settings, legs: PhoneLegs, calls: CallService):
        self.db = db
        self.livekit = livekit
        self.summaries = summaries
        self.settings = settings
        self.legs = legs
        self.calls = calls

    # -- placing the call (after the transfer row committed; from initiate-transfer) -------------
    def dial(self, transfer_id: str) -> None:
        with self.db.reading() as s:
            t = load_transfer(s, transfer_id)
            number, room = t.to_phone, t.transfer_room
        urls = WebhookUrls(self.settings.PUBLIC_BASE_URL)
        gateway = self.legs.check_can_dial(number)
        try:
            sid = gateway.place_call(
                number,
                answer_url=urls.transfer_answer(transfer_id),
                status_callback_url=urls.transfer_status(transfer_id),
                ring_timeout_s=self.settings.TRANSFER_RING_TIMEOUT_S,
            )
        except TwilioError as err:
            code = str(err.twilio_code) if err.twilio_code else None
            with self.db.transaction() as s:
                end_transfer(s, load_transfer(s, transfer_id), "fail", reason=err.message[:REASON_MAX], error_code=code, reason_code="dial_failed")
            self.livekit.discard_room(room)
            raise
        plan = LegPlan(self.legs)
        with self.db.transaction() as s:
            self._record_leg(s, transfer_id, sid, "queued")
            t = load_transfer(s, transfer_id)
            if t.status not in states.TRANSFER_OPEN:
                plan.teardown(t)  # cancelled (or the caller left) while Twilio was still answering us
        plan.run()

    # -- Twilio: Agent B picked up --------------------------------------------------------------
    def answer(self, transfer_id: str, call_sid: str, answered_by: str | None, urls: WebhookUrls):
        room = None
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
                end_transfer(s, t, "no_answer", reason=reason, reason_code="machine")
                room, response = t.transfer_room, twiml.hang_up()
            else:
                response = self._briefing(s, t, urls)
        if room:
            self.livekit.discard_room(room)
        return response

    # -- Twilio: the key Agent B pressed (or none) ------------------------------------------------
    def gather(self, transfer_id: str, call_sid: str, digits: str | None, urls: WebhookUrls):
        digits = (digits or "").strip()
        room = None
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
                    room, response = t.transfer_room, twiml.transfer_unavailable(self.legs.voice)
                else:
                    require_transition(s, "transfer", t.id, "accept", answered_at=utcnow())
                    payload = {"transfer_id": t.id, "to_agent_id": t.to_agent_id, "to_phone": t.to_phone, "channel": "phone"}
                    emit(s, "transfer_accepted", payload, audiences=[t.from_agent_id], call_id=t.call_id)
                    response = self._bridge(t)
            elif digits == twiml.DIGIT_REPEAT:
                response = self._briefing(s, t, urls)
            elif digits == twiml.DIGIT_DECLINE:
                end_transfer(s, t, "decline", reason="Agent B declined by pressing 9.", reason_code="key_9")
                room, response = t.transfer_room, twiml.transfer_declined(self.legs.voice)
            elif not digits:
                end_transfer(s, t, "decline", reason="Agent B did not press a key after the summary.", reason_code="no_input")
                room, response = t.transfer_room, twiml.no_selection(self.legs.voice)
            else:
                response = self._briefing(s, t, urls, notice=INVALID_KEY)
        if room:
            self.livekit.discard_room(room)
        return response

    # -- Twilio: call progress of Agent B's leg ---------------------------------------------------
    def leg_progress(self, transfer_id: str, call_sid: str, status: str, *, error_code: str | None = None, error_message: str | None = None) -> None:
        if status not in states.LEG_RANK:
            log.warning("ignoring unknown CallStatus %r for transfer %s", status, transfer_id)
            return
        plan = LegPlan(self.legs)
        rooms: list[str] = []
        with self.db.transaction() as s:
            t = self._leg_of(s, transfer_id, call_sid)
            if t is None:
                return
            self._record_leg(s, t.id, call_sid, status)
            if status not in states.LEG_FINAL:
                if t.status not in states.TRANSFER_OPEN and t.reason_code == "dial_failed":
                    plan.teardown(load_transfer(s, t.id))  # our request timed out but Twilio dialled anyway
            elif t.status in states.TRANSFER_OPEN:
                event, reason, reason_code = self._outcome(t, status, error_code, error_message)
                end_transfer(s, t, event, reason=reason[:REASON_MAX], reason_code=reason_code, error_code=error_code if status == "failed" else None)
                rooms.append(t.transfer_room)
            elif t.handed_over_at is not None:
                self._owner_hung_up(s, t, rooms, plan)
        if rooms:
            self.calls.after_finish(rooms, plan)
        else:
            plan.run()

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

    def _owner_hung_up(self, s: Session, t: Transfer, rooms: list[str], plan: LegPlan) -> None:
        """Agent B took the customer on this phone leg and has now hung up: the call is over,
        unless the call has moved on since (another transfer completed after this one)."""
        call = load_call(s, t.call_id)
        later = s.scalar(
            select(Transfer.id).where(Transfer.call_id == t.call_id, Transfer.handed_over_at > t.handed_over_at).limit(1)
        )
        if later is None and call.agent_id == t.to_agent_id and not states.is_terminal("call", call.status):
            self.calls.finish(s, call, reason="agent_b_hung_up", by_customer=False, rooms=rooms, legs=plan)

    # -- complete-transfer for a phone Agent B ---------------------------------------------------
    def plan_move_into_call(self, s: Session, t: Transfer) -> LegAction:
        if t.status != T.BRIEFING or not t.twilio_call_sid:
            raise Conflict(f"Transfer {t.id} is {t.status}; it cannot complete now.")
        return self.legs.into_call_room(t, load_call(s, t.call_id))

    def after_failed_move(self, transfer_id: str) -> None:
        """The leg was moved into the customer's room but this request could not complete the
        transfer. If it ended with Agent B holding the call anyway (a second click of Complete, or
        Agent A leaving mid-briefing, won the race), the leg is exactly where it must be: leave it.
        Otherwise (the caller hung up meanwhile) tell Agent B and end the leg."""
        with self.db.reading() as s:
            t = load_transfer(s, transfer_id)
            if t.handed_over_at is not None:
                return
            response = twiml.caller_left(self.legs.voice) if t.status == T.CALLER_LEFT else twiml.transfer_unavailable(self.legs.voice)
            action = self.legs.goodbye(t, response)
        self.legs.run([action])

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _leg_of(s: Session, transfer_id: str, call_sid: str) -> Transfer | None:
        """The phone transfer this webhook is about; None for an unknown id or a foreign call."""
        t = s.get(Transfer, transfer_id, populate_existing=True)
        if t is None or not t.to_phone or not call_sid:
            return None
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
        return twiml.agent_bridge(
            voice=self.legs.voice, trunk=self.legs.trunk, room=t.transfer_room, call_id=t.call_id, transfer_id=t.id, intro=BRIDGE_INTRO
        )

    def _gone(self, t: Transfer):
        voice = self.legs.voice
        if t.status == T.CANCELLED:
            return twiml.transfer_cancelled(voice)
        if t.status == T.CALLER_LEFT:
            return twiml.caller_left(voice)
        return twiml.transfer_unavailable(voice)
