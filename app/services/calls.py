"""Call lifecycle: create, join, leave, end; who may see a call and which room they belong in.

A web customer's room is created before the call's transaction (they join it the moment the API
answers) and deleted again if that transaction fails, so a failure leaves nothing half-made. A
phone caller's room is created by a task (LiveKit also creates it when their SIP leg arrives), so
Twilio's webhook never waits on LiveKit. Everything else that follows a change (rooms deleted,
participants removed, Agent B's phone leg ended) is a task written in the same transaction.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from app import metrics, states
from app.db import Database
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.events import emit, timeline
from app.gateways.livekit import LiveKitGateway
from app.models import Agent, Call, ContextEntry, Transfer, utcnow
from app.protocol import ATTR_CALL, ROLE_AGENT_A, ROLE_AGENT_B, ROLE_LEAVING, ROLE_OWNER, agent_identity, call_room
from app.ratelimit import RateLimiter
from app.repo import agents_in_call, load_call, new_id, open_transfer, release_agent, transition
from app.serializers import call_dict, entry_dict, recording_dict, transfer_dict
from app.services import call_list, effects
from app.services.agents import AuthContext, hash_secret
from app.services.audiences import call_audience
from app.services.phone_legs import PhoneLegs
from app.services.recordings import current_recording
from app.services.routing import assign_in, drain_queue
from app.services.summaries import SummaryStore
from app.services.supervision import end_for_call, visible_to_agents
from app.services.transfer_rules import close_for_call_end, end_transfer, owner_left

CUSTOMER_NAME_MAX = 120


@dataclass(frozen=True)
class RoomGrant:
    room_name: str
    token: str
    role: str


@dataclass(frozen=True)
class Caller:
    """Who asks, on the routes a web customer and an agent share (token, end-call): the customer
    when they sent their key (even an empty one), else the signed-in agent."""

    agent: AuthContext | None = None
    customer_key: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.customer_key is not None


@dataclass(frozen=True)
class WebCall:
    call: Call
    token: str
    customer_key: str  # the customer's credential for this call; only its hash is stored


def clean_customer_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("customer_name must not be empty.")
    if len(name) > CUSTOMER_NAME_MAX:
        raise ValidationFailed(f"customer_name must be at most {CUSTOMER_NAME_MAX} characters.")
    return name


class CallService:
    def __init__(
        self,
        db: Database,
        livekit: LiveKitGateway,
        summaries: SummaryStore,
        legs: PhoneLegs | None = None,
        *,
        limiter: RateLimiter | None = None,
        create_call_rate: tuple[int, int] | None = None,
    ):
        self.db = db
        self.livekit = livekit
        self.summaries = summaries
        self.legs = legs  # Agent B's phone legs, torn down or moved when the call changes
        self.limiter = limiter
        self.create_call_rate = create_call_rate  # (calls, seconds) per client address

    # -- creation --------------------------------------------------------------------------
    def open_call(self, *, channel: str, customer_name: str, first_note: str, room_now: bool, **columns) -> str:
        """Create the call (queued), its first context line and its assignment in one transaction,
        and its LiveKit room: now (`room_now`, deleted again if the transaction fails) or as a
        task. Returns the new call's id (the API's session_id)."""
        call_id = new_id()
        room = call_room(call_id)
        metadata = {ATTR_CALL: call_id, "channel": channel}
        if room_now:
            self.livekit.create_room(room, metadata=metadata)
        try:
            with self.db.transaction() as s:
                call = Call(id=call_id, room_name=room, customer_name=customer_name, channel=channel, status=str(states.CallStatus.QUEUED), **columns)
                s.add(call)
                s.flush()
                if not room_now:
                    effects.create_room(s, room, metadata=metadata)
                self.summaries.add_entry(s, call, author="system", source="system", text=first_note)
                if assign_in(s, call) is None:
                    # A queued phone caller is about to hear Twilio's hold loop (app.services.telephony).
                    call.in_hold_loop = channel == "phone"
                    payload = {"room_name": room, "customer_name": customer_name, "channel": channel}
                    emit(s, "call_queued", payload, audiences=[], call_id=call_id)
        except BaseException:
            if room_now:
                self.livekit.discard_room(room)
            raise
        return call_id

    def create_web_call(self, customer_name: str, client_address: str) -> WebCall:
        """A web customer starts a call: limited per address (counted before anything is made),
        with a fresh key that is their credential for this call alone."""
        if self.limiter is not None and self.create_call_rate is not None:
            count, window = self.create_call_rate
            self.limiter.hit(f"create-call:{client_address}", count, window, "new calls")
        customer_key = secrets.token_urlsafe(24)
        name = clean_customer_name(customer_name)
        call_id = self.open_call(
            channel="web", customer_name=name, first_note=f"Call started with customer {name}", room_now=True,
            customer_key_hash=hash_secret(customer_key),
        )
        with self.db.reading() as s:
            call = load_call(s, call_id)
        token = self.livekit.customer_token(call.id, call.room_name, call.customer_name)
        return WebCall(call, token, customer_key)

    # -- context ---------------------------------------------------------------------------
    def add_context(self, agent_id: str, call_id: str, text: str) -> ContextEntry:
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if s.scalar(select(Agent.active_call_id).where(Agent.id == agent_id)) != call.id:
                raise Forbidden("You are not in this call.")
            if states.is_terminal("call", call.status):
                raise Conflict(f"Call {call_id} has ended ({call.status}).", code="call_ended")
            entry = self.summaries.add_entry(s, call, author=agent_id, source="note", text=text)
            emit(s, "context_added", {"entry": entry_dict(entry)}, audiences=call_audience(s, call), call_id=call.id)
        return entry

    # -- access ----------------------------------------------------------------------------
    def customer_call(self, call_id: str, customer_key: str | None) -> Call:
        with self.db.reading() as s:
            call = s.get(Call, call_id)
        if call is None:
            raise NotFound(f"No call with session_id {call_id}.")
        if not customer_key or not call.customer_key_hash or hash_secret(customer_key) != call.customer_key_hash:
            raise Forbidden("The customer key does not match this call.", code="invalid_customer_key")
        return call

    def customer_status(self, call_id: str, customer_key: str | None) -> dict:
        """The web customer's view of their own call: what their page should show."""
        return self.customer_view(self.customer_call(call_id, customer_key).id)

    def customer_view(self, call_id: str) -> dict:
        """What the customer's page shows about the call, for a caller who already proved the key
        (the status route, the customer's status stream). Nothing agent-internal: no notes,
        summary or transfer reasons, only what the call is doing and with whom."""
        with self.db.reading() as s:
            call = load_call(s, call_id)
            agent_name = s.scalar(select(Agent.name).where(Agent.id == call.agent_id)) if call.agent_id else None
        return {
            "session_id": call.id,
            "status": call.status,
            "agent_name": agent_name,
            "on_hold": call.status == "on_hold",
            "end_reason": call.end_reason,
        }

    @staticmethod
    def can_view(s, agent_id: str, call: Call) -> bool:
        """Only while part of it: the owner, an agent in the call, or a party of its open transfer.
        An Agent B who declined, or an Agent A who handed over, does not keep reading what the
        customer says next. Once the call has ended nothing more is said, and every agent who
        took part in it (app.services.call_list) may read its record: their call history."""
        if call.agent_id == agent_id:
            return True
        if states.is_terminal("call", call.status):
            return s.scalar(select(Call.id).where(Call.id == call.id, call_list.took_part(agent_id))) is not None
        if s.scalar(select(Agent.active_call_id).where(Agent.id == agent_id)) == call.id:
            return True
        transfer = open_transfer(s, call.id)
        return transfer is not None and agent_id in (transfer.from_agent_id, transfer.to_agent_id)

    def get_call(self, agent_id: str, call_id: str, *, supervisor: bool = False) -> dict:
        """The call's record for an agent who may view it; a monitoring supervisor is left out of
        the timeline unless the viewer is a supervisor (app.services.supervision)."""
        with self.db.reading() as s:
            call = load_call(s, call_id)
            if not self.can_view(s, agent_id, call):
                raise Forbidden("You are not part of this call.")
            transfers = list(s.scalars(select(Transfer).where(Transfer.call_id == call.id).order_by(Transfer.requested_at)))
            return dict(
                call_dict(call),
                context=[entry_dict(e) for e in self.summaries.entries(s, call.id)],
                summary=self.summaries.current_dict(s, call.id),
                transfers=[transfer_dict(t, self.summaries.by_id(s, t.summary_id)) for t in transfers],
                timeline=[e for e in timeline(s, call.id) if supervisor or visible_to_agents(e)],
                recording=recording_dict(current_recording(s, call.id)),
            )

    def list_calls(self, agent_id: str, page: call_list.Page | None = None) -> dict:
        # Only calls the agent took part in (app.services.call_list says which, and why).
        return call_list.list_calls(self.db, agent_id, page or call_list.Page())

    def summary(self, agent_id: str, call_id: str) -> dict:
        """The call's current summary and its history, for an agent who may view the call."""
        with self.db.reading() as s:
            call = load_call(s, call_id)
            if not self.can_view(s, agent_id, call):
                raise Forbidden("You are not part of this call.")
            return {"summary": self.summaries.current_dict(s, call.id), "history": self.summaries.history(s, call.id)}

    # -- rooms and tokens ------------------------------------------------------------------
    def room_for(self, caller: Caller, call_id: str) -> RoomGrant:
        """The room `caller` belongs in for this call, with a token for it."""
        if caller.is_customer:
            return self.customer_room(self.customer_call(call_id, caller.customer_key))
        return self.agent_room(caller.agent.agent_id, caller.agent.agent_name, call_id)

    def agent_room(self, agent_id: str, agent_name: str, call_id: str) -> RoomGrant:
        """The room this agent belongs in right now, with a fresh token for it."""
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if states.is_terminal("call", call.status):
                raise Conflict(f"Call {call_id} has ended ({call.status}).", code="call_ended")
            slot = s.scalar(select(Agent.active_call_id).where(Agent.id == agent_id))
            transfer = open_transfer(s, call.id)
            if transfer is not None and transfer.from_agent_id == agent_id:
                room, role = transfer.transfer_room, ROLE_AGENT_A
            elif transfer is not None and transfer.to_agent_id == agent_id and transfer.status == "briefing":
                room, role = transfer.transfer_room, ROLE_AGENT_B
            elif slot == call.id:
                room, role = call.room_name, (ROLE_OWNER if call.agent_id == agent_id else ROLE_LEAVING)
            else:
                raise Forbidden("You are not in this call (or you have already left it).")
            if call.agent_id == agent_id and transition(s, "call", call.id, "agent_joined", answered_at=utcnow()):
                emit(s, "call_active", {"agent_id": agent_id}, audiences=[agent_id], call_id=call.id)
                effects.arm_customer_join(s, call, utcnow())
        return RoomGrant(room, self.livekit.agent_token(agent_id, agent_name, room, call.id, role), role)

    def customer_room(self, call: Call) -> RoomGrant:
        if states.is_terminal("call", call.status):
            raise Conflict(f"Call {call.id} has ended ({call.status}).", code="call_ended")
        return RoomGrant(call.room_name, self.livekit.customer_token(call.id, call.room_name, call.customer_name), "customer")

    # -- leaving and ending ----------------------------------------------------------------
    def agent_exit(self, agent_id: str, call_id: str) -> dict:
        """Agent leaves the customer room. The owner leaving hands the call on (see docs/architecture.md §3)."""
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            slot = s.scalar(select(Agent.active_call_id).where(Agent.id == agent_id))
            if slot != call.id:
                if self._handed_over_by(s, call.id, agent_id):
                    # Completing the transfer already took Agent A out; leaving again is a no-op.
                    return {"session_id": call_id, "status": call.status, "outcome": "left"}
                raise Forbidden("You are not in this call (or you have already left it).")
            t = open_transfer(s, call.id)
            if call.agent_id == agent_id:
                outcome = owner_left(s, call, agent_id, legs=self.legs)
            elif t is not None and t.to_agent_id == agent_id:
                # Agent B bowing out of the briefing: a decline, so Agent A keeps the customer
                # (completing now would hand the call to someone who has left it).
                end_transfer(s, t, "decline", reason="Agent B left the briefing.", reason_code="agent_b_left", legs=self.legs)
                effects.remove_participant(s, t.transfer_room, agent_identity(agent_id))
                outcome = "declined"
            else:
                release_agent(s, agent_id, call.id)
                emit(s, "agent_left", {"agent_id": agent_id}, audiences=[call.agent_id], call_id=call.id)
                outcome = "left"
            effects.remove_participant(s, call.room_name, agent_identity(agent_id))
            status = load_call(s, call.id).status
        drain_queue(self.db)
        return {"session_id": call_id, "status": status, "outcome": outcome}

    def microphone_failed(self, agent_id: str, call_id: str, error: str) -> dict:
        """The agent's browser cannot capture audio: a customer would wait in silence (and a phone
        caller's leg is only answered once someone publishes audio). The agent is set away and
        leaves the call as if they had left it: the caller goes to the next agent, or to a
        briefed Agent B; an Agent B whose microphone fails declines the transfer."""
        reason = f"Your microphone is not working ({error}); you are set to away and the call went to another agent."
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if s.scalar(select(Agent.active_call_id).where(Agent.id == agent_id)) != call.id:
                raise Forbidden("You are not in this call (or you have already left it).")
            s.execute(update(Agent).where(Agent.id == agent_id).values(presence="away").execution_options(synchronize_session=False))
            t = open_transfer(s, call.id)
            if call.agent_id == agent_id:
                outcome = owner_left(s, call, agent_id, legs=self.legs)
            elif t is not None and t.to_agent_id == agent_id:
                end_transfer(s, t, "decline", reason=f"Agent B's microphone failed ({error}).", reason_code="microphone_failed", legs=self.legs)
                outcome = "declined"
            else:
                release_agent(s, agent_id, call.id)
                outcome = "left"
            effects.remove_participant(s, call.room_name, agent_identity(agent_id))
            emit(s, "call_missed", {"reason": reason, "microphone_error": error}, audiences=[agent_id], call_id=call.id)
            status = load_call(s, call.id).status
        drain_queue(self.db)
        return {"session_id": call_id, "status": status, "outcome": outcome}

    @staticmethod
    def _handed_over_by(s, call_id: str, agent_id: str) -> bool:
        return (
            s.scalar(
                select(Transfer.id)
                .where(Transfer.call_id == call_id, Transfer.from_agent_id == agent_id, Transfer.handed_over_at.is_not(None))
                .limit(1)
            )
            is not None
        )

    def end_for(self, caller: Caller, call_id: str) -> Call:
        """The customer hangs up (their key must match the call), or the owning agent ends it."""
        if caller.is_customer:
            call = self.customer_call(call_id, caller.customer_key)
            return self.end_call(call.id, by_agent=None, reason="customer_hung_up")
        return self.end_call(call_id, by_agent=caller.agent.agent_id, reason="agent_ended")

    def end_call(self, call_id: str, *, by_agent: str | None, reason: str) -> Call:
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if by_agent is not None and call.agent_id != by_agent:
                raise Forbidden("Only the agent handling the call can end it.")
            if not self.finish(s, call, reason=reason, by_customer=by_agent is None):
                raise Conflict(f"Call {call_id} has already ended ({call.status}).", code="call_ended")
        drain_queue(self.db)  # the freed agents take waiting calls
        with self.db.reading() as s:
            return load_call(s, call_id)

    def finish(self, s, call: Call, *, reason: str, by_customer: bool, failed: bool = False, diagnostics: dict | None = None,
               detail: str | None = None) -> bool:
        """Inside a transaction: end the call from any live state. False if it had already ended.
        `failed` records that it could not be carried (e.g. the SIP bridge never connected), with
        `diagnostics` (bridge_status, sip_response_code, error_code) and `detail` (in words) saying
        how. Its rooms are
        deleted after commit, an open transfer's phone leg first (see `end_transfer`)."""
        abandoned = by_customer and call.status in (states.CallStatus.QUEUED, states.CallStatus.RINGING)
        event = "fail" if failed else ("abandon" if abandoned else "end")
        if not transition(s, "call", call.id, event, ended_at=utcnow(), end_reason=reason, **(diagnostics or {})):
            if states.is_terminal("call", load_call(s, call.id).status):
                return False
            raise Conflict(f"Call {call.id} cannot end from {call.status}.")
        audience = call_audience(s, call)  # before the agents are released below
        transfer = open_transfer(s, call.id)
        if transfer is not None:
            close_for_call_end(s, transfer, by_customer=by_customer, reason=reason, legs=self.legs)
        for agent_id in agents_in_call(s, call.id):
            release_agent(s, agent_id, call.id)
        status = states.edge("call", event).target
        channel = call.channel
        metrics.after_commit(s, lambda: metrics.call_ended(channel, str(status)))
        payload = {"status": str(status), "reason": reason, **(diagnostics or {})}
        if detail:
            payload["detail"] = detail
        emit(s, "call_ended", payload, audiences=audience, call_id=call.id)
        end_for_call(s, call)  # its supervisors go with the room
        effects.delete_room(s, call.room_name)
        return True
