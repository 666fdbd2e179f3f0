"""What each kind of task does (`app.services.effects` names them and writes them).

Every handler is idempotent: it may run twice (a worker died after the effect but before the
task was marked done), so it checks what the world looks like first, or makes a request whose
repetition changes nothing (deleting a room that is gone is success). Timers re-check the facts
they were armed for and raise `NotYet` while their deadline is ahead.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app import outbox
from app.errors import LiveKitFailed, TelephonyNotConfigured, TwilioError
from app.gateways.livekit import LiveKitGateway
from app.models import Call, Transfer
from app.services import effects, retention
from app.services.effects import LegAction
from app.services.participants import agent_b_leg_in
from app.services.routing import answer_missed, drain_queue
from app.services.twilio_urls import WebhookUrls

log = logging.getLogger(__name__)

# How soon a timer that could not decide (LiveKit did not answer) asks again.
RECHECK_S = 2.0
# While the transfer room waits for Agent B's leg to reach the customer's room.
BRIDGE_POLL_S = 0.5
# Twilio error 21220: the call is not in progress (hung up before our request reached it).
CALL_NOT_IN_PROGRESS = 21220


class NotYet(Exception):
    """A timer (or a step waiting for something) that is not due yet: run again at `due_at`."""

    def __init__(self, due_at: datetime):
        super().__init__(due_at.isoformat())
        self.due_at = due_at


class Permanent(Exception):
    """A failure retrying cannot fix."""


@dataclass(frozen=True)
class TaskContext:
    services: object
    now: datetime
    attempt: int

    @property
    def settings(self):
        return self.services.settings

    def later(self, seconds: float) -> NotYet:
        return NotYet(self.now + timedelta(seconds=seconds))


def _timer_result(ctx: TaskContext, result) -> None:
    """Timers return None (done), a deadline still ahead, or "retry"."""
    if isinstance(result, datetime):
        raise NotYet(result)
    if result == "retry":
        raise ctx.later(RECHECK_S)


# -- LiveKit ----------------------------------------------------------------------------------
def create_room(ctx: TaskContext, p: dict) -> None:
    ctx.services.livekit.create_room(p["room"], max_participants=p.get("max_participants", 0), metadata=p.get("metadata") or {})


def delete_room(ctx: TaskContext, p: dict) -> None:
    """Delete a room (gone already is fine). A transfer room Agent B's phone leg is leaving
    waits until LiveKit has that leg in the customer's room, or the deadline."""
    transfer_id = p.get("wait_for_bridge")
    if transfer_id and not _bridged_or_late(ctx, transfer_id, p.get("deadline")):
        raise ctx.later(BRIDGE_POLL_S)
    ctx.services.livekit.delete_room(p["room"])


def _bridged_or_late(ctx: TaskContext, transfer_id: str, deadline: str | None) -> bool:
    if deadline and ctx.now >= datetime.fromisoformat(deadline):
        log.warning("transfer %s: Agent B's leg not seen in the customer's room by %s; deleting the transfer room anyway", transfer_id, deadline)
        return True
    with ctx.services.db.reading() as s:
        t = s.get(Transfer, transfer_id)
        if t is None or t.bridged_at is not None:
            return True
        room = s.get(Call, t.call_id).room_name
    return _leg_in_room(ctx.services.livekit, room, transfer_id)


def _leg_in_room(livekit: LiveKitGateway, room: str, transfer_id: str) -> bool:
    """Asked of LiveKit directly, so it works without webhooks too."""
    try:
        return agent_b_leg_in(livekit.list_participants(room), transfer_id)
    except LiveKitFailed as err:
        if getattr(err.__cause__, "code", None) == "not_found":
            return True  # the customer's room is gone: nothing to wait for
        raise


def remove_participant(ctx: TaskContext, p: dict) -> None:
    ctx.services.livekit.remove_participant(p["room"], p["identity"])


# -- Twilio ---------------------------------------------------------------------------------------
def update_leg(ctx: TaskContext, p: dict) -> None:
    action = LegAction(p["transfer_id"], p["call_sid"], p["purpose"], p.get("status"), p.get("twiml"))
    services = ctx.services
    if action.purpose == "move_into_call" and ctx.attempt > 1:
        # A retry after a redirect that may have been applied: redirecting again would drop
        # Agent B's leg and dial it in anew. LiveKit says whether it already arrived.
        with services.db.reading() as s:
            t = s.get(Transfer, action.transfer_id)
            room = s.get(Call, t.call_id).room_name
        if t.bridged_at is not None or _leg_in_room(services.livekit, room, action.transfer_id):
            return
    try:
        services.phone_legs.perform(action)
    except TelephonyNotConfigured as err:
        raise Permanent(err.message) from err
    except TwilioError as err:
        if err.twilio_code != CALL_NOT_IN_PROGRESS:
            raise
        # The leg has ended already: for a teardown that is the goal; a move has lost Agent B.
        if action.purpose == "move_into_call":
            services.phone_transfers.move_failed(action.transfer_id)


def dial_agent_b(ctx: TaskContext, p: dict) -> None:
    ctx.services.phone_transfers.dial(p["transfer_id"], attempt=ctx.attempt)


def redirect_caller(ctx: TaskContext, p: dict) -> None:
    services = ctx.services
    with services.db.reading() as s:
        call = s.get(Call, p["call_id"])
    if call is None or call.status != "ringing" or not call.twilio_call_sid or not call.in_hold_loop:
        return  # answered, ended, or already bridged: nothing to fetch
    if services.twilio is None or not services.settings.PUBLIC_BASE_URL:
        return  # without a public URL Twilio cannot be sent anywhere; the hold loop comes back by itself
    try:
        services.twilio.redirect_to(call.twilio_call_sid, WebhookUrls(services.settings.PUBLIC_BASE_URL).voice_after_hold)
    except TwilioError as err:
        if err.twilio_code != CALL_NOT_IN_PROGRESS:
            raise


# -- summaries ------------------------------------------------------------------------------------
def refresh_draft(ctx: TaskContext, p: dict) -> None:
    # With the task's clock: held back to one draft per SUMMARY_REDRAFT_S (app.services.drafts).
    ctx.services.drafts.refresh(p["call_id"], now=ctx.now)


# -- timers ---------------------------------------------------------------------------------------
def transfer_ring(ctx: TaskContext, p: dict) -> None:
    _timer_result(ctx, ctx.services.transfers.ring_timeout(p["transfer_id"], ctx.now))


def agent_answer(ctx: TaskContext, p: dict) -> None:
    timeout = ctx.settings.AGENT_ANSWER_TIMEOUT_S
    assigned_at = datetime.fromisoformat(p["assigned_at"])
    deadline = assigned_at + timedelta(seconds=timeout)
    if ctx.now < deadline:
        raise NotYet(deadline)
    if answer_missed(ctx.services.db, p["call_id"], p["agent_id"], assigned_at, timeout):
        log.warning("call %s: agent %s did not join within %ss; set away, call moved on", p["call_id"], p["agent_id"], timeout)


def customer_grace(ctx: TaskContext, p: dict) -> None:
    _timer_result(ctx, ctx.services.livekit_events.customer_grace_over(p["call_id"], p["customer_sid"], ctx.now))


def agent_grace(ctx: TaskContext, p: dict) -> None:
    _timer_result(ctx, ctx.services.livekit_events.departures.grace_over(p["call_id"], p["agent_id"], ctx.now))


def customer_join(ctx: TaskContext, p: dict) -> None:
    _timer_result(ctx, ctx.services.arrivals.customer_join_over(p["call_id"], datetime.fromisoformat(p["since"]), ctx.now))


def handover_join(ctx: TaskContext, p: dict) -> None:
    _timer_result(ctx, ctx.services.arrivals.agent_b_join_over(p["transfer_id"], ctx.now))


def agent_b_grace(ctx: TaskContext, p: dict) -> None:
    _timer_result(ctx, ctx.services.arrivals.agent_b_return_over(p["transfer_id"], p["agent_id"], datetime.fromisoformat(p["left_at"]), ctx.now))


# -- periodic housekeeping -------------------------------------------------------------------------
def periodic_drain_queue(ctx: TaskContext, p: dict) -> None:
    drain_queue(ctx.services.db)  # normally drained as agents free up; this catches stragglers


def periodic_presence(ctx: TaskContext, p: dict) -> None:
    ctx.services.agents.expire_stale_presence()


def periodic_rate_limits(ctx: TaskContext, p: dict) -> None:
    ctx.services.limiter.sweep()


def periodic_events(ctx: TaskContext, p: dict) -> None:
    retention.prune_events(ctx.services.db, ctx.settings.EVENT_RETENTION_DAYS)


def periodic_webhook_ids(ctx: TaskContext, p: dict) -> None:
    ctx.services.livekit_events.prune_seen()


def periodic_tasks(ctx: TaskContext, p: dict) -> None:
    outbox.prune_finished(ctx.services.db, ctx.settings.TASK_RETENTION_DAYS, max(30, ctx.settings.TASK_RETENTION_DAYS))


def periodic_calls(ctx: TaskContext, p: dict) -> None:
    retention.prune_calls(ctx.services.db, ctx.settings.CALL_RETENTION_DAYS)


def periodic_sessions(ctx: TaskContext, p: dict) -> None:
    retention.prune_sessions(ctx.services.db, ctx.settings.SESSION_RETENTION_DAYS)


def periodic_recordings(ctx: TaskContext, p: dict) -> None:
    # Deleted at Twilio, then here; also those of calls about to be pruned (app.services.recordings).
    ctx.services.recordings.prune(ctx.settings.RECORDING_RETENTION_DAYS, ctx.settings.CALL_RETENTION_DAYS, now=ctx.now)


HANDLERS: dict[str, Callable[[TaskContext, dict], None]] = {
    effects.CREATE_ROOM: create_room,
    effects.DELETE_ROOM: delete_room,
    effects.REMOVE_PARTICIPANT: remove_participant,
    effects.UPDATE_LEG: update_leg,
    effects.DIAL_AGENT_B: dial_agent_b,
    effects.REDIRECT_CALLER: redirect_caller,
    effects.REFRESH_DRAFT: refresh_draft,
    effects.TRANSFER_RING_TIMER: transfer_ring,
    effects.ANSWER_TIMER: agent_answer,
    effects.CUSTOMER_GRACE_TIMER: customer_grace,
    effects.AGENT_GRACE_TIMER: agent_grace,
    effects.CUSTOMER_JOIN_TIMER: customer_join,
    effects.HANDOVER_JOIN_TIMER: handover_join,
    effects.AGENT_B_GRACE_TIMER: agent_b_grace,
    "periodic.drain_queue": periodic_drain_queue,
    "periodic.expire_presence": periodic_presence,
    "periodic.sweep_rate_limits": periodic_rate_limits,
    "periodic.prune_events": periodic_events,
    "periodic.prune_webhook_ids": periodic_webhook_ids,
    "periodic.prune_tasks": periodic_tasks,
    "periodic.prune_calls": periodic_calls,
    "periodic.prune_sessions": periodic_sessions,
    "periodic.prune_recordings": periodic_recordings,
}

# Periodic jobs and their interval (seconds): each re-enqueues itself when it ends.
PERIODIC: dict[str, float] = {
    "periodic.drain_queue": 5.0,
    "periodic.expire_presence": 30.0,
    "periodic.sweep_rate_limits": 600.0,
    "periodic.prune_events": 3600.0,
    "periodic.prune_webhook_ids": 600.0,
    "periodic.prune_tasks": 3600.0,
    "periodic.prune_calls": 3600.0,
    "periodic.prune_sessions": 3600.0,
    "periodic.prune_recordings": 3600.0,
}
