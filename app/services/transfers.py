"""Warm transfers (docs/architecture.md §3): initiate, accept, decline, complete, cancel, time out.

Each step is one transaction of conditional transitions plus the events that describe it and the
tasks that follow from it (rooms deleted, Agent A taken out of the customer's room, Agent B's
phone dialled, moved or hung up: `app.services.effects`, run by the worker). The summary and the
LiveKit transfer room are prepared before that transaction, because Agent A joins the room the
moment the API answers; the room is deleted again if the transaction does not commit. Agent B is
either a dashboard agent or a phone (`to_phone`, or an offline agent with a phone number), or a
team (`to_team`): offered to its free members, the first to accept takes it
(app.services.team_offers).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import metrics, states
from app.config import parse_rate
from app.db import Database
from app.errors import Conflict, Forbidden, NotFound, TelephonyNotConfigured, ValidationFailed
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Agent, Call, Team, Transfer, utcnow
from app.protocol import ATTR_CALL, ROLE_AGENT_A, ROLE_AGENT_B, agent_identity, transfer_room
from app.ratelimit import RateLimiter
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
from app.services import effects, team_offers
from app.services.phone_numbers import dialable
from app.services.routing import drain_queue
from app.services.summaries import SummaryStore
from app.services.teams import free_members, load_team
from app.services.transfer_rules import end_transfer

if TYPE_CHECKING:
    from app.services.phone_transfers import PhoneTransfers

log = logging.getLogger(__name__)
T = states.TransferStatus
# Twilio's own ring timeout (plus its ~5 s buffer and answering-machine detection) ends an
# unanswered phone leg; this sweep only catches a transfer whose callbacks never arrived.
PHONE_CALLBACK_GRACE_S = 60


class TransferService:
    def __init__(
        self,
        db: Database,
        livekit: LiveKitGateway,
        summaries: SummaryStore,
        settings,
        phone_transfers: PhoneTransfers | None = None,
        limiter: RateLimiter | None = None,
    ):
        self.db = db
        self.livekit = livekit
        self.summaries = summaries
        self.settings = settings
        self.phone_transfers = phone_transfers
        self.limiter = limiter

    @property
    def _legs(self):
        return self.phone_transfers.legs if self.phone_transfers is not None else None

    # -- initiate ----------------------------------------------------------------------------
    def initiate(
        self, agent_id: str, agent_name: str, call_id: str, *, to_agent_id: str | None, to_phone: str | None, to_team: str | None = None
    ):
        if sum(bool(x) for x in (to_agent_id, to_phone, to_team)) != 1:
            raise ValidationFailed("Give exactly one of to_agent_id, to_phone or to_team.")
        if to_phone is not None:
            to_phone = dialable(to_phone)
        with self.db.reading() as s:
            call = load_call(s, call_id)
            self._check_can_transfer(s, call, agent_id)
            if to_team:
                self._offered(s, to_team, agent_id)  # refused now, before a room is made for nobody
                number = None
            else:
                number = to_phone or self._agent_number(s, agent_id, to_agent_id)
        if number is not None:
            if self.phone_transfers is None:
                raise TelephonyNotConfigured("Phone transfers are not available in this deployment.")
            self.phone_transfers.legs.check_can_dial(number)
            if self.limiter is not None:
                # Every dial costs money and can reach anyone: a runaway or hijacked session
                # must not be able to place calls without limit, nor can all agents together.
                count, window = parse_rate(self.settings.PHONE_DIAL_GLOBAL_RATE_LIMIT)
                self.limiter.hit("dial:*", count, window, "phone transfers", "by all agents together")
                count, window = parse_rate(self.settings.PHONE_DIAL_RATE_LIMIT)
                self.limiter.hit(f"dial:{agent_id}", count, window, "phone transfers", "by this agent")

        summary_id = self.summaries.for_transfer(call_id)
        room = transfer_room(call_id, new_id(4))
        self.livekit.create_room(room, max_participants=4, metadata={ATTR_CALL: call_id})
        try:
            with self.db.transaction() as s:
                transfer = self._open(
                    s, call_id, agent_id, agent_name, room, summary_id, to_agent_id=to_agent_id, to_phone=number, to_team=to_team
                )
        except IntegrityError as err:
            self.livekit.discard_room(room)
            raise Conflict("This call already has a transfer in progress.") from err
        except Exception:
            self.livekit.discard_room(room)
            raise
        token = self.livekit.agent_token(agent_id, agent_name, room, call_id, ROLE_AGENT_A)
        return self.describe(transfer.id), token

    @staticmethod
    def _agent_number(s: Session, agent_id: str, to_agent_id: str) -> str | None:
        """None to ring `to_agent_id` in the dashboard; their phone if they are offline and have one."""
        target = s.get(Agent, to_agent_id)
        if target is None:
            raise NotFound(f"No agent with id {to_agent_id}.")
        if target.id == agent_id:
            raise ValidationFailed("You cannot transfer a call to yourself.")
        if target.disabled_at is not None:
            # Offline with a phone would otherwise ring the phone of someone who has left.
            raise Conflict(f"Agent {target.id} cannot take a transfer (account disabled).", code="agent_unavailable")
        if target.active_call_id is None and target.presence == "available":
            return None
        if target.active_call_id is None and target.presence == "offline" and target.phone:
            return target.phone
        state = "busy on another call" if target.active_call_id else target.presence
        raise Conflict(f"Agent {target.id} cannot take a transfer right now ({state}).", code="agent_unavailable")

    @staticmethod
    def _offered(s: Session, team_id: str, agent_id: str) -> list[str]:
        """Who a transfer to `team_id` would be offered to now: its free members but Agent A."""
        team = load_team(s, team_id)
        members = free_members(s, team.id, exclude=(agent_id,))
        if not members:
            raise Conflict(f"Nobody in {team.name} is available right now.", code="team_unavailable")
        return members

    def _check_can_transfer(self, s: Session, call: Call, agent_id: str) -> None:
        if call.agent_id != agent_id:
            raise Forbidden("Only the agent handling the call can transfer it.")
        if call.status not in states.CALL_CONNECTED:
            if open_transfer(s, call.id) is not None:
                raise Conflict("This call already has a transfer in progress.", code="transfer_in_progress")
            raise Conflict(f"Call {call.id} is {call.status}; only a connected call can be transferred.")
        last = s.scalar(
            select(Transfer).where(Transfer.call_id == call.id, Transfer.status == str(T.COMPLETED)).order_by(Transfer.ended_at.desc()).limit(1)
        )
        if last is not None and last.to_phone and last.to_agent_id == agent_id:
            # Their phone leg sits in the customer's room; a consult would need it moved, which
            # only a dashboard session can do. (A later dashboard exit hands the call on as usual.)
            raise Conflict("You are on this call by phone; phone-connected agents cannot start a transfer.", code="owner_on_phone")

    def _open(
        self, s: Session, call_id: str, agent_id: str, agent_name: str, room: str, summary_id: int, *,
        to_agent_id: str | None, to_phone: str | None, to_team: str | None = None,
    ) -> Transfer:
        call = load_call(s, call_id)
        if call.agent_id != agent_id:
            raise Forbidden("Only the agent handling the call can transfer it.")
        # Read again in this transaction: who was free a moment ago may have taken a call since.
        offered = self._offered(s, to_team, agent_id) if to_team else [to_agent_id]
        team_name = s.get(Team, to_team).name if to_team else None
        require_transition(s, "call", call_id, "hold")
        transfer = Transfer(
            id=f"tr_{new_id()}",
            call_id=call_id,
            from_agent_id=agent_id,
            to_agent_id=to_agent_id,
            to_phone=to_phone,
            to_team=to_team,
            status=str(T.PENDING),
            transfer_room=room,
            summary_id=summary_id,
            requested_at=utcnow(),
        )
        s.add(transfer)
        s.flush()
        if to_team:
            team_offers.offer(s, transfer.id, offered)
        require_transition(s, "transfer", transfer.id, "ring")
        # The hold is enforced by the server, not only by Agent A's browser: whatever the client
        # does, nothing of the consult can reach the customer's room.
        effects.remove_participant(s, call.room_name, agent_identity(agent_id))
        if to_phone is not None:
            effects.dial_agent_b(s, transfer.id)  # a refused dial ends the transfer as `failed`
        effects.arm(s, effects.TRANSFER_RING_TIMER, {"transfer_id": transfer.id}, self.ring_deadline(transfer))
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
                "to_phone": to_phone,
                "to_team": to_team,
                "team_name": team_name,
            },
            audiences=offered,
            call_id=call_id,
        )
        ringing = {"transfer_id": transfer.id, "to_agent_id": to_agent_id, "to_phone": to_phone, "to_team": to_team}
        emit(s, "transfer_ringing", ringing, audiences=[agent_id], call_id=call_id)
        return transfer

    # -- Agent B -----------------------------------------------------------------------------
    def accept(self, agent_id: str, agent_name: str, transfer_id: str):
        with self.db.transaction() as s:
            t = self._for_agent_b(s, transfer_id, agent_id)
            if t.status != T.RINGING:
                raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be accepted.")
            if t.to_phone:
                raise Conflict("This transfer is ringing your phone; answer it there and press 1.", code="phone_transfer")
            if not claim_agent(s, agent_id, t.call_id):
                raise Conflict("You are already on another call; finish it before accepting a transfer.", code="agent_busy")
            if t.to_agent_id is None:
                self._take(s, t, agent_id, agent_name)
            else:
                require_transition(s, "transfer", t.id, "accept", answered_at=utcnow())
            accepted = {"transfer_id": t.id, "to_agent_id": agent_id, "to_team": t.to_team}
            emit(s, "transfer_accepted", accepted, audiences=[t.from_agent_id], call_id=t.call_id)
            room, call_id = t.transfer_room, t.call_id
        token = self.livekit.agent_token(agent_id, agent_name, room, call_id, ROLE_AGENT_B)
        return self.describe(transfer_id), token

    @staticmethod
    def _take(s: Session, t: Transfer, agent_id: str, agent_name: str) -> None:
        """The first member of the team to accept takes the transfer: one conditional UPDATE (still
        ringing, nobody has it yet), so of two concurrent accepts exactly one changes the row; the
        other finds it taken and rolls back (its claim on itself too). The members still offered
        are told, so their dashboards stop ringing."""
        won = transition(s, "transfer", t.id, "accept", only_if=(Transfer.to_agent_id.is_(None),), to_agent_id=agent_id, answered_at=utcnow())
        if not won:
            taken = load_transfer(s, t.id)
            if taken.to_agent_id is not None and taken.to_agent_id != agent_id:
                raise Conflict("Another member of the team has already taken this transfer.", code="transfer_taken")
            raise Conflict(f"Transfer {t.id} is {taken.status}; it can no longer be accepted.")
        others = [a for a in team_offers.offered(s, t.id) if a != agent_id]
        payload = {"transfer_id": t.id, "to_team": t.to_team, "to_agent_id": agent_id, "to_agent_name": agent_name}
        emit(s, "transfer_taken", payload, audiences=others, call_id=t.call_id)

    def decline(self, agent_id: str, transfer_id: str, reason: str | None):
        with self.db.transaction() as s:
            t = self._for_agent_b(s, transfer_id, agent_id)
            if t.to_agent_id is None:
                self._decline_offer(s, t, agent_id)
            else:
                text = f"Agent B declined: {reason}" if reason else "Agent B declined."
                # A phone agent may decline from the dashboard too: their leg is ended.
                if not end_transfer(s, t, "decline", reason=text, reason_code="declined", legs=self._legs):
                    raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be declined.")
        drain_queue(self.db)  # Agent B is free for waiting callers again
        return self.describe(transfer_id)

    def _decline_offer(self, s: Session, t: Transfer, agent_id: str) -> None:
        """A team member declines a team transfer nobody has taken: it is no longer offered to
        them and rings on for the others; the last one to decline ends it as `declined`."""
        # Offers of one transfer change one at a time: two last members declining at once must
        # not each see the other still offered (and leave the transfer ringing for nobody).
        t = s.get(Transfer, t.id, populate_existing=True, with_for_update=True)
        if t.status not in (T.PENDING, T.RINGING):
            raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be declined.")
        if t.to_agent_id is not None:
            raise Conflict("Another member of the team has already taken this transfer.", code="transfer_taken")
        if not team_offers.decline(s, t.id, agent_id):
            raise Conflict("You have already declined this transfer.")
        if team_offers.offered(s, t.id):
            return
        team = s.get(Team, t.to_team)
        reason = f"Everyone available in {team.name if team else t.to_team} declined."
        end_transfer(s, t, "decline", reason=reason, reason_code="declined", legs=self._legs)

    # -- Agent A -----------------------------------------------------------------------------
    def complete(self, agent_id: str, transfer_id: str):
        """Agent B takes the customer. A phone Agent B's call is redirected into the customer's room
        by the worker, which deletes the transfer room only once LiveKit has the leg there."""
        with self.db.transaction() as s:
            t = self._for_agent_a(s, transfer_id, agent_id)
            if t.to_phone and not t.twilio_call_sid:
                raise Conflict(f"Transfer {t.id} is {t.status}; it cannot complete now.")
            b_gone = t.status == T.BRIEFING and t.to_agent_id is not None and not t.to_phone and (
                s.scalar(select(Agent.active_call_id).where(Agent.id == t.to_agent_id)) != t.call_id
            )
            if b_gone:
                # Agent B no longer holds the call (left, or was taken out): handing it over would
                # give the customer to nobody. The transfer ends; Agent A keeps the customer.
                end_transfer(s, t, "decline", reason="Agent B is no longer in the briefing.", reason_code="agent_b_left", legs=self._legs)
            else:
                now = utcnow()
                self._hand_over(s, t, now)
        if b_gone:
            raise Conflict("Agent B has left the briefing; the transfer has ended and the customer stays with you.", code="agent_b_left")
        drain_queue(self.db)
        return self.describe(transfer_id)

    def _hand_over(self, s: Session, t: Transfer, now: datetime) -> None:
        """Agent B takes the customer (inside the caller's transaction)."""
        require_transition(s, "transfer", t.id, "complete", ended_at=now, handed_over_at=now)
        require_transition(s, "call", t.call_id, "hand_over", agent_id=t.to_agent_id)
        to_phone = t.to_phone
        metrics.after_commit(s, lambda: metrics.transfer_ended(to_phone, str(T.COMPLETED)))
        # Agent A's part ends here: free for the next caller, out of the customer's room.
        release_agent(s, t.from_agent_id, t.call_id)
        call = load_call(s, t.call_id)
        effects.remove_participant(s, call.room_name, agent_identity(t.from_agent_id))
        if t.to_phone and self.phone_transfers is not None:
            self.phone_transfers.legs.schedule_move(s, load_transfer(s, t.id), call)
        else:
            effects.delete_room(s, t.transfer_room)
        payload = {"transfer_id": t.id, "customer_room": call.room_name, "to_agent_id": t.to_agent_id, "to_phone": t.to_phone}
        emit(s, "transfer_completed", payload, audiences=[t.from_agent_id, t.to_agent_id], call_id=t.call_id)
        effects.arm_handover_join(s, t.id, now)

    def cancel(self, agent_id: str, transfer_id: str):
        with self.db.transaction() as s:
            t = self._for_agent_a(s, transfer_id, agent_id)
            if not end_transfer(s, t, "cancel", reason="Cancelled by Agent A.", reason_code="cancelled", legs=self._legs):
                raise Conflict(f"Transfer {t.id} is {t.status}; it can no longer be cancelled.")
        drain_queue(self.db)
        return self.describe(transfer_id)

    # -- time ----------------------------------------------------------------------------------
    def ring_deadline(self, t: Transfer) -> datetime:
        """When an unanswered transfer gives up. A phone leg is timed by Twilio (its own ring
        timeout, plus its ~5 s buffer and answering-machine detection); ours only catches a
        transfer whose callbacks never arrived, so it waits a grace period longer."""
        seconds = self.settings.TRANSFER_RING_TIMEOUT_S + (PHONE_CALLBACK_GRACE_S if t.to_phone else 0)
        return t.requested_at + timedelta(seconds=seconds)

    def ring_timeout(self, transfer_id: str, now: datetime) -> datetime | None:
        """The ring timer: past the deadline, a transfer nobody answered ends as no_answer (and a
        phone leg still ringing is cancelled). Returns the deadline while it is still ahead."""
        with self.db.transaction() as s:
            t = load_transfer(s, transfer_id)
            deadline = self.ring_deadline(t)
            if now < deadline:
                return deadline if t.status in (T.PENDING, T.RINGING) else None
            if t.to_phone and t.leg_status is not None and t.leg_status not in states.leg_statuses_below("in-progress"):
                return None  # Twilio reported the leg answered or over: its own callbacks decide
            timeout = self.settings.TRANSFER_RING_TIMEOUT_S
            if t.status not in (T.PENDING, T.RINGING) or not end_transfer(
                s, t, "no_answer", reason=f"No answer within {timeout} seconds.", reason_code="no_answer", legs=self._legs
            ):
                return None
        drain_queue(self.db)
        return None

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
        """The transfer, if it is addressed to `agent_id`: to them, or to a team that offered it to them."""
        t = load_transfer(s, transfer_id)
        if t.to_agent_id == agent_id:
            return t
        offer = team_offers.offer_of(s, t.id, agent_id) if t.to_team else None
        if offer is None:
            raise Forbidden("This transfer is not addressed to you.")
        if t.to_agent_id is not None:
            raise Conflict("Another member of the team has already taken this transfer.", code="transfer_taken")
        if offer.declined_at is not None:
            raise Conflict("You have declined this transfer.")
        return t
