"""Warm transfers (DESIGN §4.4–4.7): initiate, accept, decline, complete, cancel, time out.

Each step is one transaction of conditional transitions plus the events that describe it. The
summary and the LiveKit transfer room are prepared before that transaction, and the room is
deleted again if the transaction does not commit.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import states
from app.db import Database
from app.errors import Conflict, Forbidden, NotFound, TelephonyNotConfigured, ValidationFailed
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Agent, Call, Transfer, utcnow
from app.repo import (
    claim_agent,
    load_call,
    load_transfer,
    new_id,
    open_transfer,
    release_agent,
    require_transition,
    transition,
)
from app.serializers import summary_dict
from app.services.agents import E164
from app.services.routing import assign_in
from app.services.summaries import SummaryStore

log = logging.getLogger(__name__)
T = states.TransferStatus


# -- rules shared with the call lifecycle (run inside the caller's transaction) ------------------
def end_transfer(s: Session, t: Transfer, event: str, *, reason: str, error_code: str | None = None, resume_call: bool = True) -> bool:
    """End an open transfer without completing it. False if it had already ended (a no-op)."""
    if not transition(s, "transfer", t.id, event, ended_at=utcnow(), reason=reason, error_code=error_code):
        return False
    call = load_call(s, t.call_id)
    if t.to_agent_id and t.to_agent_id != call.agent_id:
        release_agent(s, t.to_agent_id, call.id)
    if resume_call:
        transition(s, "call", call.id, "resume")
    outcome = states.edge("transfer", event).target
    payload = {"transfer_id": t.id, "outcome": str(outcome), "reason": reason, "error_code": error_code, "handed_over": False}
    emit(s, states.FAILURE_EVENT_TYPE[outcome], payload, audiences=[t.from_agent_id, t.to_agent_id], call_id=t.call_id)
    return True


def close_for_call_end(s: Session, t: Transfer, *, by_customer: bool, reason: str) -> None:
    if by_customer:
        end_transfer(s, t, "caller_left", reason="The caller hung up.", resume_call=False)
    else:
        end_transfer(s, t, "cancel", reason=f"The call was ended ({reason}).", resume_call=False)


def owner_left(s: Session, call: Call, agent_id: str, rooms: list[str]) -> str:
    """The agent who owns the call left it. Agent B takes over if already briefed, else requeue."""
    t = open_transfer(s, call.id)
    if t is not None and t.status == T.BRIEFING and t.to_agent_id:
        now = utcnow()
        require_transition(s, "transfer", t.id, "agent_a_left", ended_at=now, bridged_at=now, reason="Agent A left during the briefing; Agent B now has the customer.")
        require_transition(s, "call", call.id, "hand_over", agent_id=t.to_agent_id)
        release_agent(s, agent_id, call.id)
        payload = {
            "transfer_id": t.id,
            "outcome": str(T.AGENT_A_LEFT),
            "reason": "Agent A left during the briefing; you now have the customer.",
            "handed_over": True,
            "customer_room": call.room_name,
        }
        emit(s, "transfer_failed", payload, audiences=[agent_id, t.to_agent_id], call_id=call.id)
        rooms.append(t.transfer_room)
        return "handed_over"
    if t is not None:
        end_transfer(s, t, "agent_a_left", reason="Agent A left before Agent B joined.")
        rooms.append(t.transfer_room)
    release_agent(s, agent_id, call.id)
    require_transition(s, "call", call.id, "requeue", agent_id=None, assigned_at=None)
    emit(s, "call_queued", {"room_name": call.room_name, "customer_name": call.customer_name, "previous_agent_id": agent_id}, audiences=[], call_id=call.id)
    assign_in(s, load_call(s, call.id), exclude=(agent_id,))
    return "requeued"


class TransferService:
    def __init__(self, db: Database, livekit: LiveKitGateway, summaries: SummaryStore, settings):
        self.db = db
        self.livekit = livekit
        self.summaries = summaries
        self.settings = settings

    # -- initiate ----------------------------------------------------------------------------
    def initiate(self, agent_id: str, agent_name: str, call_id: str, *, to_agent_id: str | None, to_phone: str | None):
        if bool(to_agent_id) == bool(to_phone):
            raise ValidationFailed("Give exactly one of to_agent_id or to_phone.")
        if to_phone is not None:
            if not E164.match(to_phone):
                raise ValidationFailed("to_phone must be an E.164 number such as +14155550100.")
            raise TelephonyNotConfigured("Phone transfers need Twilio: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_PHONE_NUMBER.")
        with self.db.reading() as s:
            call = load_call(s, call_id)
            self._check_can_transfer(s, call, agent_id)
            target = s.get(Agent, to_agent_id)
            if target is None:
                raise NotFound(f"No agent with id {to_agent_id}.")
            if target.id == agent_id:
                raise ValidationFailed("You cannot transfer a call to yourself.")
            if target.presence != "available" or target.active_call_id is not None:
                state = "busy on another call" if target.active_call_id else target.presence
                raise Conflict(f"Agent {target.id} cannot take a transfer right now ({state}).", code="agent_unavailable")

        summary_id = self.summaries.for_transfer(call_id)
        room = f"transfer_{call_id}_{new_id(4)}"
        self.livekit.create_room(room, max_participants=4, metadata={"wt_call": call_id})
        try:
            with self.db.transaction() as s:
                transfer = self._open(s, call_id, agent_id, agent_name, room, summary_id, to_agent_id=to_agent_id)
        except IntegrityError as err:
            self.livekit.discard_room(room)
            raise Conflict("This call already has a transfer in progress.") from err
        except Exception:
            self.livekit.discard_room(room)
            raise
        token = self.livekit.agent_token(agent_id, agent_name, room, call_id, "agent_a")
        return self.describe(transfer.id), token

    def _check_can_transfer(self, s: Session, call: Call, agent_id: str) -> None:
        if call.agent_id != agent_id:
            raise Forbidden("Only the agent handling the call can transfer it.")
        if call.status not in states.CALL_CONNECTED:
            if open_transfer(s, call.id) is not None:
                raise Conflict("This call already has a transfer in progress.", code="transfer_in_progress")
            raise Conflict(f"Call {call.id} is {call.status}; only a connected call can be transferred.")

    def _open(self, s: Session, call_id: str, agent_id: str, agent_name: str, room: str, summary_id: int, *, to_agent_id: str | None) -> Transfer:
        call = load_call(s, call_id)
        if call.agent_id != agent_id:
            raise Forbidden("Only the agent handling the call can transfer it.")
        require_transition(s, "call", call_id, "hold")
        transfer = Transfer(
            id=f"tr_{new_id()}",
            call_id=call_id,
            from_agent_id=agent_id,
            to_agent_id=to_agent_id,
            status=str(T.PENDING),
            transfer_room=room,
            summary_id=summary_id,
            requested_at=utcnow(),
        )
        s.add(transfer)
        s.flush()
        require_transition(s, "transfer", transfer.id, "ring")
        summary = summary_dict(self.summaries.by_id(s, summary_id))
        emit(
            s,
            "transfer_requested",
            {
                "transfer_id": transfer.id,
                "transfer_room": room,
                "customer_name": call.customer_name,
                "from_agent_id": agent_id,
                "from_agent_name": agent_name,
                "summary": summary,
                "ring_timeout_s": self.settings.TRANSFER_RING_TIMEOUT_S,
            },
            audiences=[to_agent_id],
            call_id=call_id,
        )
        emit(s, "transfer_ringing", {"transfer_id": transfer.id, "to_agent_id": to_agent_id}, audiences=[agent_id], call_id=call_id)
        return transfer

    # -- Agent B -----------------------------------------------------------------------------
    def accept(self, agent_id: str, agent_name: str, transfer_id: str):
        with self.db.transaction() as s:
            t = self._for_agent_b(s, transfer_id, agent_id)
            if t.status != T.RINGING:
                raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be accepted.")
            if not claim_agent(s, agent_id, t.call_id):
                raise Conflict("You are already on another call; finish it before accepting a transfer.", code="agent_busy")
            require_transition(s, "transfer", t.id, "accept", answered_at=utcnow())
            emit(s, "transfer_accepted", {"transfer_id": t.id, "to_agent_id": agent_id}, audiences=[t.from_agent_id], call_id=t.call_id)
            room, call_id = t.transfer_room, t.call_id
        token = self.livekit.agent_token(agent_id, agent_name, room, call_id, "agent_b")
        return self.describe(transfer_id), token

    def decline(self, agent_id: str, transfer_id: str, reason: str | None):
        with self.db.transaction() as s:
            t = self._for_agent_b(s, transfer_id, agent_id)
            text = f"Agent B declined: {reason}" if reason else "Agent B declined."
            if not end_transfer(s, t, "decline", reason=text):
                raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be declined.")
            room = t.transfer_room
        self.livekit.discard_room(room)
        return self.describe(transfer_id)

    # -- Agent A -----------------------------------------------------------------------------
    def complete(self, agent_id: str, transfer_id: str):
        with self.db.transaction() as s:
            t = self._for_agent_a(s, transfer_id, agent_id)
            now = utcnow()
            require_transition(s, "transfer", t.id, "complete", ended_at=now, bridged_at=now)
            require_transition(s, "call", t.call_id, "hand_over", agent_id=t.to_agent_id)
            call = load_call(s, t.call_id)
            payload = {"transfer_id": t.id, "customer_room": call.room_name, "to_agent_id": t.to_agent_id}
            emit(s, "transfer_completed", payload, audiences=[t.from_agent_id, t.to_agent_id], call_id=t.call_id)
            room = t.transfer_room
        self.livekit.discard_room(room)
        return self.describe(transfer_id)

    def cancel(self, agent_id: str, transfer_id: str):
        with self.db.transaction() as s:
            t = self._for_agent_a(s, transfer_id, agent_id)
            if not end_transfer(s, t, "cancel", reason="Cancelled by Agent A."):
                raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be cancelled.")
            room = t.transfer_room
        self.livekit.discard_room(room)
        return self.describe(transfer_id)

    # -- time ----------------------------------------------------------------------------------
    def expire_unanswered(self) -> int:
        """Periodic: a transfer nobody answered within TRANSFER_RING_TIMEOUT_S ends as no_answer."""
        timeout = self.settings.TRANSFER_RING_TIMEOUT_S
        cutoff = utcnow() - timedelta(seconds=timeout)
        with self.db.reading() as s:
            stale = list(
                s.scalars(
                    select(Transfer.id).where(
                        Transfer.status.in_([str(T.PENDING), str(T.RINGING)]), Transfer.requested_at < cutoff, Transfer.to_phone.is_(None)
                    )
                )
            )
        expired = 0
        for transfer_id in stale:
            with self.db.transaction() as s:
                t = load_transfer(s, transfer_id)
                if end_transfer(s, t, "no_answer", reason=f"No answer within {timeout} seconds."):
                    expired += 1
                    room = t.transfer_room
                else:
                    room = None
            if room:
                self.livekit.discard_room(room)
        return expired

    # -- helpers -------------------------------------------------------------------------------
    def describe(self, transfer_id: str) -> dict:
        from app.serializers import transfer_dict

        with self.db.reading() as s:
            t = load_transfer(s, transfer_id)
            return transfer_dict(t, self.summaries.by_id(s, t.summary_id))

    @staticmethod
    def _for_agent_a(s: Session, transfer_id: str, agent_id: str) -> Transfer:
        t = load_transfer(s, transfer_id)
        if t.from_agent_id != agent_id:
            raise Forbidden("Only the agent who started this transfer can do that.")
        return t

    @staticmethod
    def _for_agent_b(s: Session, transfer_id: str, agent_id: str) -> Transfer:
        t = load_transfer(s, transfer_id)
        if t.to_agent_id != agent_id:
            raise Forbidden("This transfer is not addressed to you.")
        return t
