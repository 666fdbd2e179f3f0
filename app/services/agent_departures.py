"""Agents who drop out of their call without saying so: a browser crash, a dead network.

LiveKit reports the agent handling a call leaving the customer's room, or — during a transfer they
started — the transfer room. A page refresh is back within seconds, so a departure only counts
after AGENT_RECONNECT_GRACE_S (a timer task armed at the departure), and only if LiveKit confirms
the agent is in neither room. The call is then handled exactly as if the agent had pressed
"leave": Agent B takes over if already briefed, otherwise the caller goes back to the queue for
the next agent (docs/architecture.md, "Transfers": agent_a_left).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app import states
from app.db import Database
from app.errors import AppError, LiveKitFailed, LiveKitUnavailable
from app.gateways.livekit import LiveKitGateway
from app.models import Call, Transfer, utcnow
from app.protocol import agent_identity
from app.repo import open_transfer
from app.services import effects

log = logging.getLogger(__name__)
C = states.CallStatus
IN_CONVERSATION = (str(C.ACTIVE), str(C.ON_HOLD), str(C.TRANSFERRED))


class AgentDepartures:
    def __init__(self, db: Database, livekit: LiveKitGateway, calls, grace_s: int):
        self.db = db
        self.livekit = livekit
        self.calls = calls
        self.grace = timedelta(seconds=grace_s)

    # -- from LiveKit webhooks, inside their transaction -------------------------------------
    def left(self, s: Session, call: Call, agent_id: str, room: str) -> str | None:
        """The agent's browser left `room`. None if that says nothing about the call's owner."""
        if agent_id != call.agent_id or call.status not in IN_CONVERSATION:
            return None
        t = open_transfer(s, call.id)
        consulting = t is not None and t.from_agent_id == agent_id
        if room == call.room_name and consulting:
            return "agent a moved to the consult"  # leaving the held customer is the plan
        if room != call.room_name and not (consulting and room == t.transfer_room):
            return None
        now = utcnow()
        recorded = s.execute(
            update(Call)
            # The first departure counts (a second "left" for an older session changes nothing),
            # unless it was recorded for a previous owner of the call.
            .where(Call.id == call.id, or_(Call.owner_left_at.is_(None), Call.owner_left_agent != agent_id))
            .values(owner_left_at=now, owner_left_agent=agent_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if recorded:
            effects.arm(s, effects.AGENT_GRACE_TIMER, {"call_id": call.id, "agent_id": agent_id}, now + self.grace)
        return "agent left; waiting for a reconnect"

    @staticmethod
    def back(s: Session, call: Call, agent_id: str) -> None:
        s.execute(
            update(Call)
            .where(Call.id == call.id, Call.owner_left_agent == agent_id)
            .values(owner_left_at=None, owner_left_agent=None)
            .execution_options(synchronize_session=False)
        )

    # -- the grace timer ----------------------------------------------------------------------
    def grace_over(self, call_id: str, agent_id: str, now) -> object:
        """Take the owner out once gone longer than the grace period (and confirmed gone by
        LiveKit). Returns the deadline while it is ahead, "retry" if LiveKit cannot say, else None."""
        with self.db.reading() as s:
            row = s.execute(
                select(Call.owner_left_at, Call.room_name, Transfer.transfer_room)
                .outerjoin(Transfer, and_(Transfer.call_id == Call.id, Transfer.status.in_([str(x) for x in states.TRANSFER_OPEN])))
                .where(Call.id == call_id, Call.owner_left_agent == agent_id, Call.agent_id == agent_id, Call.status.in_(IN_CONVERSATION))
            ).first()
        if row is None or row.owner_left_at is None:
            return None  # back, or no longer theirs
        deadline = row.owner_left_at + self.grace
        if now < deadline:
            return deadline
        present = self._present(agent_id, [row.room_name, row.transfer_room])
        if present is None:
            return "retry"
        if present:
            log.warning("call %s: agent %s is in the room although LiveKit reported them gone", call_id, agent_id)
            with self.db.transaction() as s:
                self.back(s, s.get(Call, call_id), agent_id)
            return None
        self._take_out(call_id, agent_id, deadline)
        return None

    def _take_out(self, call_id: str, agent_id: str, cutoff) -> bool:
        with self.db.reading() as s:
            call = s.get(Call, call_id)
            still_gone = call.owner_left_agent == agent_id and call.owner_left_at is not None and call.owner_left_at <= cutoff - self.grace
        if not still_gone:
            return False  # they came back since we looked
        try:
            outcome = self.calls.agent_exit(agent_id, call_id)
        except AppError as err:  # the call moved on meanwhile (ended, handed over): nothing to do
            log.info("call %s: agent %s no longer in it (%s)", call_id, agent_id, err.message)
            return False
        log.warning("call %s: agent %s dropped out for over %ss: %s", call_id, agent_id, int(self.grace.total_seconds()), outcome["outcome"])
        return True

    def _present(self, agent_id: str, rooms: list[str | None]) -> bool | None:
        identity = agent_identity(agent_id)
        for room in filter(None, rooms):
            try:
                if any(p.identity == identity for p in self.livekit.list_participants(room)):
                    return True
            except LiveKitFailed as err:
                if getattr(err.__cause__, "code", None) != "not_found":
                    return None
            except LiveKitUnavailable:
                return None
        return False
