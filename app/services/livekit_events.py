"""LiveKit's webhooks (docs/architecture.md §9): who joined or left which room, and what that means for calls.

Each delivery is applied in one transaction that also records its event id, so a retried or
replayed delivery finds its id taken and changes nothing; within it every change is a
conditional UPDATE, so deliveries that arrive late or out of order are harmless too. Network
work (deleting rooms, removing a participant, ending Agent B's phone leg) is written as tasks in
that transaction and run by the worker: the webhook answers without waiting on LiveKit or Twilio.

Who is who is decided by `app.services.participants.identify`: SIP legs by the X-WT-* header
attributes, browsers by the identity in the token the app minted; never by a guessed `sip_…`.

What the events mean:
- `active` means the assigned agent has joined the customer (their token request, or LiveKit
  reporting them in `call_<id>`). The customer joining does not make a call active by itself:
  a phone caller is always in the room before an agent picks up, and counting that as answered
  would turn every caller who gives up while the agent's dashboard rings into a completed call
  instead of an abandoned one. The customer's presence is recorded (`customer_joined_at`, ...).
- The customer leaving: a SIP caller who hung up (LiveKit SIP marks the leg `sip.callStatus =
  hangup` as it closes it, pkg/sip/inbound.go `close`) ends the call at once (`caller_left` for
  an open transfer, through `CallService.finish`). A SIP leg LiveKit SIP closed itself (its
  ringing timeout, a media failure) says nothing about the caller, who may still be on the line:
  Twilio's dial action decides. A web customer may only be refreshing the page, so the call ends
  once they have been gone for CUSTOMER_RECONNECT_GRACE_S (a timer, `customer_grace_over`, that
  asks LiveKit before ending anything).
- Agent B in the transfer room: the transfer is briefing (a no-op when accept already did it).
- Agent B in the customer's room after the hand-over: `bridged_at`, the time to a human.
- A supervisor (`supervisor-<agent id>`) joining changes nothing; leaving ends their supervision
  (app.services.supervision), never the call, and is never an agent's departure.
- `room_finished` for a call room with a conversation in progress: the call ends. Transfer
  rooms are only logged: their transfer ends through the API or Twilio, never by a room timeout.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import metrics, states
from app.db import Database
from app.errors import LiveKitFailed, LiveKitUnavailable
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.logs import mask_phones
from app.models import Agent, Call, LiveKitWebhookEvent, Transfer, utcnow
from app.protocol import customer_identity, room_kind
from app.repo import claim_agent, load_call, open_transfer, transition
from app.services import effects
from app.services.agent_departures import AgentDepartures
from app.services.audiences import call_audience
from app.services.calls import CallService
from app.services.participants import Who, identify, newer_session, since_ms
from app.services.phone_legs import PhoneLegs
from app.services.routing import drain_queue
from app.services.supervision import SupervisionService

log = logging.getLogger(__name__)
C, T = states.CallStatus, states.TransferStatus
RETRY = "retry"  # a timer that could not decide yet (LiveKit did not answer): try again shortly
# LiveKit reports a participant whose media never connected as "connection aborted" instead of
# "left"; for us both mean the participant is gone.
LEFT_EVENTS = frozenset({"participant_left", "participant_connection_aborted"})
# Everything else LiveKit sends (room_started, track_published, ...) is acknowledged unread.
HANDLED_EVENTS = frozenset({"participant_joined", "room_finished"}) | LEFT_EVENTS
WEBHOOK_EVENT_RETENTION = timedelta(hours=1)
# A call room may finish while a phone caller waits in Twilio's hold loop (nobody in the room
# yet); only these statuses mean a conversation was in progress and is now over.
CONVERSATION = frozenset({C.ACTIVE, C.ON_HOLD, C.TRANSFERRED})
# Transfers whose Agent B may turn up in the customer's room: handed over to them.
BRIDGEABLE = frozenset({T.COMPLETED, T.AGENT_A_LEFT})


EVICTED = "participant removed: not part of this call"
# The attribute LiveKit SIP keeps a leg's state in, and its value once the caller hung up
# (protocol livekit/attrs.go AttrSIPCallStatus; pkg/sip/participant.go CallStatus.Attribute).
SIP_CALL_STATUS = "sip.callStatus"
SIP_HUNG_UP = "hangup"


class LiveKitEvents:
    def __init__(self, db: Database, livekit: LiveKitGateway, calls: CallService, legs: PhoneLegs, settings, departures: AgentDepartures):
        self.db = db
        self.livekit = livekit
        self.calls = calls
        self.legs = legs
        self.departures = departures
        self.grace = timedelta(seconds=settings.CUSTOMER_RECONNECT_GRACE_S)

    # -- one delivery ------------------------------------------------------------------------
    def handle(self, event) -> str:
        """Apply a verified WebhookEvent; returns what it did (for the log and the response)."""
        if event.event not in HANDLED_EVENTS:
            return "ignored"
        with self.db.transaction() as s:
            if event.id and not self._first_delivery(s, event):
                return "duplicate"
            outcome = self._apply(s, event)
            if outcome == EVICTED:
                # A token is only a ticket to join; being in the room is for whoever the call says.
                effects.remove_participant(s, event.room.name, event.participant.identity)
        if outcome.startswith(("call ended", "call abandoned")):
            drain_queue(self.db)  # its agents are free for waiting callers
        # A phone leg's identity is LiveKit SIP's "sip_<number>": the number is masked.
        log.info("livekit webhook %s %s room=%s participant=%s: %s", event.id, event.event, event.room.name, mask_phones(event.participant.identity or "-"), outcome)
        return outcome

    @staticmethod
    def _first_delivery(s: Session, event) -> bool:
        try:
            with s.begin_nested():
                s.add(LiveKitWebhookEvent(id=event.id[:64], type=event.event[:32], received_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def _apply(self, s: Session, event) -> str:
        room = event.room.name
        kind = room_kind(room)
        if kind == "call":
            call = s.scalar(select(Call).where(Call.room_name == room).execution_options(populate_existing=True))
            if call is None:
                return "unknown room"
            if event.event == "participant_joined":
                return self._joined_call_room(s, call, event.participant)
            if event.event in LEFT_EVENTS:
                return self._left_call_room(s, call, event.participant)
            if event.event == "room_finished":
                return self._call_room_finished(s, call)
        elif kind == "transfer":
            t = s.scalar(select(Transfer).where(Transfer.transfer_room == room).execution_options(populate_existing=True))
            if t is None:
                return "unknown room"
            if event.event == "participant_joined":
                return self._joined_transfer_room(s, t, event.participant)
            if event.event in LEFT_EVENTS:
                who = identify(event.participant, t.call_id)
                if who.role == "agent" and not who.sip and who.agent_id == t.from_agent_id:
                    return self.departures.left(s, load_call(s, t.call_id), who.agent_id, room) or "ignored"
                if who.role == "agent" and not who.sip and who.agent_id == t.to_agent_id and t.status == T.BRIEFING:
                    # A refresh is back within seconds; a crash is not (app.services.arrivals).
                    effects.arm_agent_b_return(s, t.id, who.agent_id, utcnow())
                    return "agent b left the briefing; waiting for a reconnect"
                return "ignored"
            if event.event == "room_finished":
                if t.status in states.TRANSFER_OPEN:
                    log.warning("transfer room %s finished while transfer %s is %s", room, t.id, t.status)
                return "transfer room finished"
        return "ignored"

    # -- the customer's room -----------------------------------------------------------------
    def _joined_call_room(self, s: Session, call: Call, p) -> str:
        if states.is_terminal("call", call.status):
            return "call already ended"
        who = identify(p, call.id)
        if who.role == "supervisor":
            return "supervisor present"  # never an agent arriving: nothing about the call changes
        if who.role == "customer":
            # Only a newer session than the newest seen counts, so a join delivered after its
            # own "left" (or after a newer session's join) changes nothing.
            moved = s.execute(
                update(Call)
                .where(Call.id == call.id, newer_session(p))
                .values(customer_sid=p.sid, customer_since_ms=since_ms(p), customer_left_at=None, customer_joined_at=func.coalesce(Call.customer_joined_at, utcnow()))
                .execution_options(synchronize_session=False)
            ).rowcount
            if moved:
                self._customer_presence(s, call, present=True)
            return "customer present" if moved else "older customer session"
        if who.role == "agent" and not who.sip:
            t = open_transfer(s, call.id)
            if t is not None and t.from_agent_id == who.agent_id:
                # Agent A during their own consult: the customer is on hold, and the token Agent A
                # already holds for this room must not let them listen in (or be heard).
                return EVICTED
        if who.role == "agent" and who.agent_id == call.agent_id and transition(s, "call", call.id, "agent_joined", answered_at=utcnow()):
            emit(s, "call_active", {"agent_id": call.agent_id}, audiences=[call.agent_id], call_id=call.id)
            effects.arm_customer_join(s, call, utcnow())
            return "call active"
        if who.role == "agent" and s.scalar(select(Agent.active_call_id).where(Agent.id == who.agent_id)) != call.id:
            return EVICTED  # e.g. Agent A after handing over, rejoining with a still-valid token
        if who.role == "agent":
            self.departures.back(s, call, who.agent_id)
        if who.role in ("agent", "agent_b"):
            return self._bridged(s, call, who)
        return "ignored"

    def _bridged(self, s: Session, call: Call, who: Who) -> str:
        """Agent B has reached the customer: record the first time."""
        if who.sip:
            target = Transfer.id == (who.transfer_id or "")
        else:
            target = Transfer.to_agent_id == who.agent_id
        now = utcnow()
        bridged = s.execute(
            update(Transfer)
            .where(Transfer.call_id == call.id, target, Transfer.status.in_([str(x) for x in BRIDGEABLE]), Transfer.bridged_at.is_(None))
            .where(Transfer.handed_over_at.is_not(None))
            .values(bridged_at=now)
            .returning(Transfer.id, Transfer.from_agent_id, Transfer.to_agent_id, Transfer.to_phone, Transfer.handed_over_at)
            .execution_options(synchronize_session=False)
        ).all()
        for transfer_id, from_agent, to_agent, to_phone, handed_over_at in bridged:
            # The hand-over gap: Agent A was released and taken out of the room at handed_over_at;
            # the customer has a person again now.
            gap, target = metrics.seconds_since(handed_over_at, now), metrics.target_of(to_phone)
            metrics.after_commit(s, lambda gap=gap, target=target: metrics.HANDOVER_GAP.labels(target).observe(gap))
            payload = {"transfer_id": transfer_id, "bridged_at": now.isoformat()}
            emit(s, "transfer_bridged", payload, audiences=[from_agent, to_agent], call_id=call.id)
        return "agent b bridged" if bridged else "ignored"

    def _left_call_room(self, s: Session, call: Call, p) -> str:
        who = identify(p, call.id)
        if who.role == "supervisor":
            # Whatever the call's state: a supervision the call's end has not closed yet closes now.
            return SupervisionService.left(s, who.supervision_id, who.agent_id, call)
        if states.is_terminal("call", call.status):
            return "call already ended"
        if who.role == "agent" and not who.sip:
            return self.departures.left(s, call, who.agent_id, call.room_name) or "ignored"
        if who.role != "customer":
            return "ignored"
        if who.sip:
            status = dict(p.attributes).get(SIP_CALL_STATUS)
            if status not in (None, "", SIP_HUNG_UP):
                # Not in the room any more (routing then fetches them from Twilio's hold loop).
                s.execute(update(Call).where(Call.id == call.id, Call.customer_sid == p.sid).values(customer_left_at=utcnow())
                          .execution_options(synchronize_session=False))
                return f"caller's SIP leg closed by LiveKit SIP ({status}); Twilio's dial action decides"
            self.calls.finish(s, call, reason="customer_hung_up", by_customer=True)
            return "call ended (caller hung up)"
        # The newest session leaving (even one whose join we have not seen yet) starts the grace
        # period; an older session leaving after a refresh does not.
        current = and_(Call.customer_sid == p.sid, Call.customer_left_at.is_(None))
        left = s.execute(
            update(Call)
            .where(Call.id == call.id, or_(newer_session(p), current))
            .values(customer_sid=p.sid, customer_since_ms=since_ms(p), customer_left_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if left and not self.grace:
            self.calls.finish(s, load_call(s, call.id), reason="customer_left", by_customer=True)
            return "call ended (customer left)"
        if left:
            self._customer_presence(s, call, present=False)
            effects.arm(s, effects.CUSTOMER_GRACE_TIMER, {"call_id": call.id, "customer_sid": p.sid}, utcnow() + self.grace)
        return "customer left; waiting for a reconnect" if left else "older customer session"

    def _customer_presence(self, s: Session, call: Call, *, present: bool) -> None:
        """Tell the agents in the call, so Agent A's screen can say "reconnecting…"."""
        payload = {"present": present, "grace_s": None if present else int(self.grace.total_seconds())}
        emit(s, "customer_presence", payload, audiences=call_audience(s, call), call_id=call.id)

    def _call_room_finished(self, s: Session, call: Call) -> str:
        if states.is_terminal("call", call.status):
            return "call already ended"
        if call.status in CONVERSATION:
            self.calls.finish(s, call, reason="room_finished", by_customer=False)
            return "call ended (room finished)"
        if call.channel == "web":
            # Queued or ringing, and nobody in the room for LiveKit's timeout: the web customer
            # has gone without saying so.
            self.calls.finish(s, call, reason="room_finished", by_customer=True)
            return "call abandoned (room finished)"
        return "ignored (phone caller not yet bridged)"

    # -- the transfer room -------------------------------------------------------------------
    def _joined_transfer_room(self, s: Session, t: Transfer, p) -> str:
        who = identify(p, t.call_id)
        is_b = (who.role == "agent" and who.agent_id is not None and who.agent_id == t.to_agent_id) or (
            who.role == "agent_b" and who.sip and who.transfer_id == t.id
        )
        if not is_b:
            is_a = who.role == "agent" and who.agent_id == t.from_agent_id and t.status in states.TRANSFER_OPEN
            if is_a:
                self.departures.back(s, load_call(s, t.call_id), who.agent_id)
            if is_a or who.sip:
                return "ignored"
            return EVICTED  # nobody else belongs in the agents' private consult
        if t.status != T.RINGING:
            return "already briefing" if t.status == T.BRIEFING else "transfer not open"
        # Accept normally does this; here LiveKit saw Agent B arrive before accept committed.
        if t.to_agent_id and not claim_agent(s, t.to_agent_id, t.call_id):
            log.warning("transfer %s: Agent B %s joined the transfer room but is busy on another call", t.id, t.to_agent_id)
            return "agent b busy"
        if not transition(s, "transfer", t.id, "accept", answered_at=utcnow()):
            return "transfer not open"
        payload = {"transfer_id": t.id, "to_agent_id": t.to_agent_id, "to_phone": t.to_phone, "channel": "phone" if who.sip else "browser"}
        emit(s, "transfer_accepted", payload, audiences=[t.from_agent_id], call_id=t.call_id)
        return "briefing"

    # -- timers ---------------------------------------------------------------------------------
    def customer_grace_over(self, call_id: str, customer_sid: str, now) -> object:
        """The reconnect timer of a web customer's departure: end the call if this departure still
        stands after CUSTOMER_RECONNECT_GRACE_S and LiveKit confirms they are gone. Returns the
        deadline while it is still ahead, `RETRY` when LiveKit cannot say, else None."""
        with self.db.reading() as s:
            call = s.get(Call, call_id)
            if call is None or states.is_terminal("call", call.status):
                return None
            if call.customer_left_at is None or call.customer_sid != customer_sid:
                return None  # they came back (or a newer session left: its own timer decides)
            deadline = call.customer_left_at + self.grace
            room = call.room_name
        if now < deadline:
            return deadline
        present = self._customer_in_room(call_id, room)
        if present is None:
            return RETRY  # LiveKit cannot say; ask again shortly rather than guess
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if call.customer_left_at is None or call.customer_sid != customer_sid or states.is_terminal("call", call.status):
                return None
            if present:
                log.warning("call %s: customer is in the room although LiveKit reported them gone; keeping the call", call_id)
                s.execute(update(Call).where(Call.id == call_id).values(customer_left_at=None).execution_options(synchronize_session=False))
                self._customer_presence(s, call, present=True)  # clear any "reconnecting…"
                return None
            self.calls.finish(s, call, reason="customer_left", by_customer=True)
        drain_queue(self.db)
        return None

    def _customer_in_room(self, call_id: str, room: str) -> bool | None:
        try:
            return any(p.identity == customer_identity(call_id) for p in self.livekit.list_participants(room))
        except LiveKitFailed as err:
            if getattr(err.__cause__, "code", None) == "not_found":
                return False
            log.warning("call %s: cannot check the customer's presence: %s", call_id, err.message)
            return None
        except LiveKitUnavailable as err:
            log.warning("call %s: cannot check the customer's presence: %s", call_id, err.message)
            return None

    def prune_seen(self) -> int:
        with self.db.transaction() as s:
            cutoff = utcnow() - WEBHOOK_EVENT_RETENTION
            return s.execute(delete(LiveKitWebhookEvent).where(LiveKitWebhookEvent.received_at < cutoff)).rowcount
