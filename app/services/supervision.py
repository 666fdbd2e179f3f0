"""Supervisors in live calls: monitor, whisper, barge (docs/architecture.md §3 "Supervision").

A supervisor (an account with the supervisor role, `app.api.guards.supervisor_required`) gets a
token for the customer's room as `supervisor-<agent id>`, never `agent-<agent id>`, so LiveKit's
webhooks never count them as an agent arriving or leaving (`app.services.participants.identify`).
What each mode is, and what enforces it:

- `monitor`: hidden and subscribe-only (`LiveKitGateway.supervisor_token`). livekit-server keeps a
  hidden participant out of everyone else's participant list and updates; it cannot publish, so
  nobody hears it. Nobody is told: the start and end are on the call's timeline only
  (audience None), and an agent's own view of the timeline leaves them out (`visible_to_agents`).
- `whisper`: the supervisor publishes a microphone track that only the agent may subscribe to.
  The supervisor's client sets its track subscription permissions to the identities in
  `whisper_to` *before* publishing; livekit-server refuses every other subscription to the
  track (pkg/rtc/room.go `ResolveMediaTrackForSubscriber`: `pub.HasPermission(trackID,
  sub.Identity())`, pkg/rtc/uptrackmanager.go `hasPermissionLocked`; the subscriber gets
  ErrNoTrackPermission, pkg/rtc/subscriptionmanager.go), including livekit-sip, which subscribes
  to every audio track to mix it for the phone. So the customer never receives it, on the phone or
  on the web. Trust assumption: the supervisor's client is trusted to set those permissions; a
  client that does not is heard by everyone, which is a barge, and supervisors may barge anyway.
  Only egress recorders are exempt from permissions (room.go
  `IsParticipantExemptFromTrackPermissionsRestrictions`); this app records through Twilio, which
  records what the caller's SIP leg receives, so a whisper is not in the recording either.
  Not offered when the call's agent is a phone Agent B: their audio is a SIP leg in the same
  room, mixed by livekit-sip, and the app has no client on that side to rely on.
  The agent whispered to is told (`supervision_started` to them); the customer never is.
- `barge`: a normal participant; `supervision_started` goes to the call's whole audience.

A supervision ends by `POST /api/supervise/end`, by the supervisor's participant leaving the room
(the webhook names the supervision in the `wt_supervision` attribute, so the exit of a session
replaced by a newer one ends only its own), by a new supervision of the same supervisor, or by the
call ending. Each way is one conditional UPDATE on `ended_at IS NULL`, so `supervision_ended` is
written once. Ending through the API also removes the participant (a task), so a hidden monitor
cannot stay listening after it has "ended".
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import states
from app.db import Database
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import emit
from app.gateways.livekit import LiveKitGateway
from app.models import Call, Supervision, Transfer, utcnow
from app.protocol import SUPERVISION_MODES, agent_identity, supervisor_identity
from app.repo import load_call, new_id
from app.services import effects
from app.services.agents import AuthContext
from app.services.audiences import call_audience

C = states.CallStatus
# A call someone is talking in: the agent with the customer, or the customer on hold during a
# consult (the hold music and, once back, the agent).
LIVE = frozenset({C.ACTIVE, C.ON_HOLD, C.TRANSFERRED})
SUPERVISION_EVENTS = frozenset({"supervision_started", "supervision_ended"})


@dataclass(frozen=True)
class SupervisionGrant:
    supervision: Supervision
    room_name: str
    token: str
    identity: str
    whisper_to: list[str]


class SupervisionService:
    def __init__(self, db: Database, livekit: LiveKitGateway):
        self.db = db
        self.livekit = livekit

    def start(self, auth: AuthContext, call_id: str, mode: str) -> SupervisionGrant:
        """A supervisor joins a live call in `mode`. Any supervision of theirs still open (this
        call in another mode, or another call) ends first: one identity, one room at a time."""
        if mode not in SUPERVISION_MODES:
            raise ValidationFailed(f"mode must be one of {', '.join(SUPERVISION_MODES)}.")
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            if states.is_terminal("call", call.status):
                raise Conflict(f"Call {call.id} has ended ({call.status}).", code="call_ended")
            if call.status not in LIVE:
                raise Conflict(f"Call {call.id} is {call.status}: nobody is talking to the customer yet.", code="call_not_connected")
            if call.agent_id == auth.agent_id:
                raise Conflict("This is your own call; supervise someone else's.", code="own_call")
            whisper_to: list[str] = []
            if mode == "whisper":
                if phone_agent_b(s, call):
                    raise Conflict(
                        "Whisper is not available on this call: its agent is a phone Agent B, whose audio LiveKit SIP mixes "
                        "in the customer's room, so nothing the app controls could keep the customer from hearing it. "
                        "Monitor or barge instead.",
                        code="whisper_not_available",
                    )
                if call.agent_id is None:
                    raise Conflict(f"Call {call.id} has no agent to whisper to.", code="whisper_not_available")
                whisper_to = [agent_identity(call.agent_id)]
            for open_one in s.scalars(select(Supervision).where(Supervision.supervisor_id == auth.agent_id, Supervision.ended_at.is_(None))):
                _end(s, open_one, "replaced")
                if open_one.call_id != call.id:
                    # In the same room the new session's join replaces it (same identity).
                    effects.remove_participant(s, load_call(s, open_one.call_id).room_name, supervisor_identity(auth.agent_id))
            sup = Supervision(
                id=f"su_{new_id()}", call_id=call.id, supervisor_id=auth.agent_id, mode=mode,
                whisper_to=call.agent_id if mode == "whisper" else None, started_at=utcnow(),
            )
            s.add(sup)
            s.flush()
            emit(s, "supervision_started", {"supervisor_id": auth.agent_id, "mode": mode}, audiences=_told(s, call, sup), call_id=call.id)
            room = call.room_name
        token = self.livekit.supervisor_token(auth.agent_id, auth.agent_name, room, call_id, mode, sup.id)
        return SupervisionGrant(sup, room, token, supervisor_identity(auth.agent_id), whisper_to)

    def end(self, supervisor_id: str, call_id: str) -> Supervision:
        """The supervisor stops supervising this call; their participant is removed (a task)."""
        with self.db.transaction() as s:
            call = load_call(s, call_id)
            sup = s.scalar(
                select(Supervision).where(Supervision.call_id == call.id, Supervision.supervisor_id == supervisor_id, Supervision.ended_at.is_(None))
            )
            if sup is None:
                raise NotFound(f"You are not supervising call {call_id}.", code="not_supervising")
            _end(s, sup, "ended")
            effects.remove_participant(s, call.room_name, supervisor_identity(supervisor_id))
            return s.get(Supervision, sup.id, populate_existing=True)

    @staticmethod
    def left(s: Session, supervision_id: str | None, supervisor_id: str, call: Call) -> str:
        """Inside a webhook's transaction: the supervisor's participant left the call's room."""
        sup = s.get(Supervision, supervision_id) if supervision_id else None
        if sup is None or sup.supervisor_id != supervisor_id or sup.call_id != call.id:
            return "ignored"
        return "supervision ended (supervisor left)" if _end(s, sup, "left") else "supervision already ended"


def end_for_call(s: Session, call: Call) -> None:
    """Inside the transaction that ends `call`: its supervisions end with it (the room goes too)."""
    for sup in s.scalars(select(Supervision).where(Supervision.call_id == call.id, Supervision.ended_at.is_(None))):
        _end(s, sup, "call_ended")


def visible_to_agents(event: dict) -> bool:
    """Whether an agent's own view of a call's timeline shows this event: everything but a
    monitoring supervisor (hidden live, so not revealed afterwards either; supervisors see all)."""
    return not (event["type"] in SUPERVISION_EVENTS and event["payload"].get("mode") == "monitor")


def _end(s: Session, sup: Supervision, reason: str) -> bool:
    ended = s.execute(
        update(Supervision)
        .where(Supervision.id == sup.id, Supervision.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if ended:
        call = load_call(s, sup.call_id)
        payload = {"supervisor_id": sup.supervisor_id, "mode": sup.mode, "reason": reason}
        emit(s, "supervision_ended", payload, audiences=_told(s, call, sup), call_id=call.id)
    return bool(ended)


def _told(s: Session, call: Call, sup: Supervision) -> set[str]:
    """Who hears of a supervision as it happens: the whole call for a barge, the agent whispered
    to for a whisper, nobody for a monitor (the timeline still records it)."""
    if sup.mode == "barge":
        return call_audience(s, call)
    if sup.mode == "whisper" and sup.whisper_to:
        return {sup.whisper_to}
    return set()


def phone_agent_b(s: Session, call: Call) -> bool:
    """Whether the call's current agent is on the phone: handed over to a phone Agent B."""
    return call.id in calls_with_phone_agent_b(s, [call])


def calls_with_phone_agent_b(s: Session, calls: list[Call]) -> set[str]:
    """Which of `calls` have a phone Agent B as their current agent: transferred, and the last
    completed transfer went to a phone number (one query for all, for the supervisor's floor)."""
    transferred = {c.id: c for c in calls if c.status == C.TRANSFERRED}
    if not transferred:
        return set()
    last: dict[str, Transfer] = {}
    for t in s.scalars(select(Transfer).where(Transfer.call_id.in_(list(transferred)), Transfer.status == str(states.TransferStatus.COMPLETED))):
        if t.call_id not in last or (t.ended_at or t.requested_at) > (last[t.call_id].ended_at or last[t.call_id].requested_at):
            last[t.call_id] = t
    return {cid for cid, t in last.items() if t.to_phone and t.to_agent_id == transferred[cid].agent_id}
