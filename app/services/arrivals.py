"""Deadlines for someone to arrive, so no caller is left with nobody (docs/architecture.md,
"No stranded caller").

Three people can fail to turn up where the call needs them, each without a word:
- a web customer whose browser never connects to LiveKit after their agent joined (blocked
  microphone prompt, tab closed while connecting): the agent would talk to nobody, the call
  `active` forever. After CUSTOMER_JOIN_TIMEOUT_S the call ends (`customer_never_joined`).
- Agent B after a hand-over (browser dead, phone leg lost): the call is theirs but the customer
  hears hold audio forever. After HANDOVER_JOIN_TIMEOUT_S without Agent B in the customer's room
  the caller goes back to the queue (`agent_b_never_joined`), Agent B is set away and told why.
- Agent B's browser leaving the consult during the briefing (a crash; the API's own
  `agent-exit-room` is handled at once by CallService): after AGENT_RECONNECT_GRACE_S without
  them back, the transfer is declined (`agent_b_left`) and Agent A gets the customer back.

Each is a durable timer task armed when its clock starts (it survives any restart), whose
handler recomputes the deadline from the stored facts and the current setting, asks LiveKit
before acting (a lost webhook must not end a call that is fine), and re-checks everything in
the transaction that acts. LiveKit not answering means "ask again shortly", never "gone".
The timers are armed by `app.services.effects` (arm_customer_join, arm_handover_join,
arm_agent_b_return) wherever the clock starts.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from app import states
from app.db import Database
from app.errors import LiveKitFailed, LiveKitUnavailable
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Agent, Call, Transfer
from app.protocol import agent_identity, customer_identity
from app.repo import load_call, load_transfer
from app.services.participants import agent_b_leg_in
from app.services.routing import drain_queue
from app.services.transfer_rules import end_transfer, owner_left

log = logging.getLogger(__name__)
C, T = states.CallStatus, states.TransferStatus
RETRY = "retry"


class Arrivals:
    def __init__(self, db: Database, livekit: LiveKitGateway, calls, legs, settings):
        self.db = db
        self.livekit = livekit
        self.calls = calls
        self.legs = legs
        self.settings = settings

    # -- the web customer ---------------------------------------------------------------------
    def customer_join_over(self, call_id: str, since: datetime, now: datetime) -> object:
        deadline = since + timedelta(seconds=self.settings.CUSTOMER_JOIN_TIMEOUT_S)
        with self.db.reading() as s:
            call = s.get(Call, call_id)
            if call is None or states.is_terminal("call", call.status) or call.customer_joined_at is not None:
                return None
            room = call.room_name
        if now < deadline:
            return deadline
        present = self._identity_present(room, customer_identity(call_id))
        if present is None:
            return RETRY
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if states.is_terminal("call", call.status) or call.customer_joined_at is not None:
                return None
            if present:
                # There, though the webhook saying so never came: record it, keep the call.
                s.execute(update(Call).where(Call.id == call_id).values(customer_joined_at=now).execution_options(synchronize_session=False))
                return None
            timeout = self.settings.CUSTOMER_JOIN_TIMEOUT_S
            self.calls.finish(s, call, reason="customer_never_joined", by_customer=True,
                              detail=f"The customer's browser did not connect within {timeout} seconds.")
        log.warning("call %s: the web customer never connected; call ended", call_id)
        drain_queue(self.db)
        return None

    # -- Agent B after the hand-over ------------------------------------------------------------------
    def agent_b_join_over(self, transfer_id: str, now: datetime) -> object:
        with self.db.reading() as s:
            t = s.get(Transfer, transfer_id)
            if t is None or t.handed_over_at is None or t.bridged_at is not None:
                return None
            call = s.get(Call, t.call_id)
            if states.is_terminal("call", call.status) or call.status != C.TRANSFERRED or call.agent_id != t.to_agent_id:
                return None  # ended, or already moved on (to the queue, to another agent)
            deadline = t.handed_over_at + timedelta(seconds=self.settings.HANDOVER_JOIN_TIMEOUT_S)
            room, to_agent, to_phone = call.room_name, t.to_agent_id, t.to_phone
        if now < deadline:
            return deadline
        if to_phone:
            present = self._present(room, lambda ps: agent_b_leg_in(ps, transfer_id))
        else:
            present = self._identity_present(room, agent_identity(to_agent))
        if present is None:
            return RETRY
        with self.db.transaction() as s:
            t = load_transfer(s, transfer_id)
            call = load_call(s, t.call_id)
            if t.bridged_at is not None or call.status != C.TRANSFERRED or call.agent_id != t.to_agent_id:
                return None
            if present:
                s.execute(update(Transfer).where(Transfer.id == t.id).values(bridged_at=now).execution_options(synchronize_session=False))
                return None
            timeout = self.settings.HANDOVER_JOIN_TIMEOUT_S
            reason = f"You did not reach the customer within {timeout} seconds of the hand-over; the call went back to the queue."
            if to_agent:
                # A browser that died must not be given the next caller either.
                s.execute(update(Agent).where(Agent.id == to_agent).values(presence="away").execution_options(synchronize_session=False))
                emit(s, "call_missed", {"reason": reason, "reason_code": "agent_b_never_joined"}, audiences=[to_agent], call_id=call.id)
            if to_phone:
                self.legs.schedule_teardown(s, t)  # wherever the leg is, it is not with the customer
            owner_left(s, call, to_agent, legs=self.legs)
        log.warning("transfer %s: Agent B never reached the customer; call %s requeued", transfer_id, call.id)
        drain_queue(self.db)
        return None

    # -- Agent B's browser leaving the briefing -------------------------------------------------------
    def agent_b_return_over(self, transfer_id: str, agent_id: str, left_at: datetime, now: datetime) -> object:
        deadline = left_at + timedelta(seconds=self.settings.AGENT_RECONNECT_GRACE_S)
        with self.db.reading() as s:
            t = s.get(Transfer, transfer_id)
            if t is None or t.status != T.BRIEFING or t.to_agent_id != agent_id:
                return None
            room = t.transfer_room
        if now < deadline:
            return deadline
        present = self._identity_present(room, agent_identity(agent_id))
        if present is None:
            return RETRY
        if present:
            return None  # back (a page refresh)
        with self.db.transaction() as s:
            t = load_transfer(s, transfer_id)
            if t.status != T.BRIEFING:
                return None
            grace = self.settings.AGENT_RECONNECT_GRACE_S
            end_transfer(s, t, "decline", reason=f"Agent B left the briefing and did not come back within {grace} seconds.",
                         reason_code="agent_b_left", legs=self.legs)
        drain_queue(self.db)
        return None

    def _identity_present(self, room: str, identity: str) -> bool | None:
        return self._present(room, lambda ps: any(p.identity == identity for p in ps))

    def _present(self, room: str, test) -> bool | None:
        try:
            return test(self.livekit.list_participants(room))
        except LiveKitFailed as err:
            if getattr(err.__cause__, "code", None) == "not_found":
                return False
            log.warning("cannot list room %s: %s", room, err.message)
            return None
        except LiveKitUnavailable as err:
            log.warning("cannot list room %s: %s", room, err.message)
            return None
