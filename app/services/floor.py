"""The floor at a glance, for supervisors (GET /api/supervisor/floor and its stream): who is
waiting and for how long, every live call and what is happening in it, every agent and what they
are doing (docs/architecture.md §3 "Supervisor view").

Read from the database alone, so every instance shows the same floor. Durations are not computed
here: each row carries the moment its state began (`waiting_since`, `state_since`, from
`status_changed_at`, which every transition stamps) and the answer carries `server_time`, so a
page counts the seconds itself without asking again, corrected for its own clock's offset.

A supervisor sees customers' names (as the agents do), never their numbers: none of this needs
them, and the page is on a wall screen as often as on a desk.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from app import states
from app.db import Database
from app.logs import mask_phones
from app.models import Agent, Call, Team, Transfer, utcnow
from app.services.stats import missed_calls
from app.services.stats_report import mask_phone
from app.services.supervision import LIVE as SUPERVISABLE
from app.services.supervision import calls_with_phone_agent_b

C = states.CallStatus
T = states.TransferStatus
# Of the live calls (states.CALL_LIVE), these wait in the queue; the others are shown as calls.
WAITING = (C.QUEUED,)
# What a supervisor reads in the "State" column, from the call's status and its open transfer.
STATE_LABELS = {
    "ringing": "Ringing",
    "talking": "Talking",
    "on_hold": "On hold",
    "consult": "Consult",
    "transferred": "Transferred",
}


@dataclass(frozen=True)
class Window:
    """`since`: where "today" starts for the per-agent counts and the missed calls (the page
    passes its local midnight)."""

    since: datetime


def customer_label(call: Call) -> str:
    """The customer's name as the floor shows it. A phone caller's name is made from their number
    ("Caller +14155550123", app.services.telephony), which a supervisor does not need: any number
    in it keeps only its last four digits."""
    return mask_phones(call.customer_name)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def call_state(call_status: str, transfer_status: str | None) -> str:
    """What is happening in a live call, for a person: the agent is being rung, talking, has the
    customer on hold while Agent B is rung (on_hold), is briefing Agent B (consult), or Agent B
    has the customer (transferred)."""
    if call_status == C.RINGING:
        return "ringing"
    if call_status == C.ON_HOLD:
        return "consult" if transfer_status == T.BRIEFING else "on_hold"
    if call_status == C.TRANSFERRED:
        return "transferred"
    return "talking"


class FloorService:
    def __init__(self, db: Database):
        self.db = db

    def snapshot(self, window: Window) -> dict:
        with self.db.reading() as s:
            accounts = list(s.scalars(select(Agent).order_by(Agent.name, Agent.id)))
            names = {a.id: a.name for a in accounts}  # disabled ones too: they may still own a call
            teams = dict(s.execute(select(Team.id, Team.name)).all())
            live = list(s.scalars(select(Call).where(Call.status.in_([str(x) for x in states.CALL_LIVE]))
                                  .order_by(Call.created_at, Call.id)))
            open_transfers = {
                t.call_id: t
                for t in s.scalars(select(Transfer).where(
                    Transfer.call_id.in_([c.id for c in live]),
                    Transfer.status.in_([str(x) for x in states.TRANSFER_OPEN]),
                ))
            } if live else {}
            phone_b = calls_with_phone_agent_b(s, live)
            missed = missed_calls(s, window.since)
            agents = [a for a in accounts if a.disabled_at is None]
            calls_today = dict(s.execute(
                select(Call.agent_id, func.count()).where(Call.created_at >= window.since, Call.agent_id.is_not(None))
                .group_by(Call.agent_id)).all())
            handed_off = dict(s.execute(
                select(Transfer.from_agent_id, func.count()).where(Transfer.requested_at >= window.since)
                .group_by(Transfer.from_agent_id)).all())
            received = dict(s.execute(
                select(Transfer.to_agent_id, func.count()).where(
                    Transfer.requested_at >= window.since, Transfer.to_agent_id.is_not(None),
                    or_(Transfer.status == str(T.COMPLETED), Transfer.handed_over_at.is_not(None)))
                .group_by(Transfer.to_agent_id)).all())
            # A transfer leaves the call with Agent B: Agent A's call counts for them too.
            passed_on = dict(s.execute(
                select(Transfer.from_agent_id, func.count(func.distinct(Transfer.call_id))).join(Call, Call.id == Transfer.call_id)
                .where(Call.created_at >= window.since, Call.agent_id.is_distinct_from(Transfer.from_agent_id))
                .group_by(Transfer.from_agent_id)).all())
        waiting = [c for c in live if c.status in WAITING]
        now = utcnow()
        return {
            "server_time": now.isoformat(),
            "since": window.since.isoformat(),
            "queue": {
                "waiting": [self._waiting(c) for c in waiting],
                "longest_wait_since": _iso(min((c.requeued_at or c.created_at for c in waiting), default=None)),
                "missed": missed,
            },
            "calls": [self._live(c, open_transfers.get(c.id), names, teams, c.id in phone_b) for c in live if c.status not in WAITING],
            "agents": [
                {
                    "agent_id": a.id,
                    "name": a.name,
                    "role": a.role,
                    "presence": a.presence,
                    "current_call": a.active_call_id,
                    "calls_today": calls_today.get(a.id, 0) + passed_on.get(a.id, 0),
                    "transfers_out_today": handed_off.get(a.id, 0),
                    "transfers_in_today": received.get(a.id, 0),
                }
                for a in agents
            ],
        }

    @staticmethod
    def _waiting(call: Call) -> dict:
        return {
            "session_id": call.id,
            "customer_name": customer_label(call),
            "channel": call.channel,
            # A call that went back to the queue (its agent did not join, or left) waits again
            # from then; `requeued` says it has already missed an agent.
            "waiting_since": _iso(call.requeued_at or call.created_at),
            "requeued": call.requeued_at is not None,
        }

    @staticmethod
    def _live(call: Call, transfer: Transfer | None, names: dict, teams: dict, on_phone: bool) -> dict:
        state = call_state(call.status, transfer.status if transfer else None)
        consult = None
        since = call.status_changed_at or call.created_at
        if transfer is not None:
            if transfer.to_agent_id:
                kind, label = "agent", names.get(transfer.to_agent_id, transfer.to_agent_id)
            elif transfer.to_team:
                kind, label = "team", teams.get(transfer.to_team, transfer.to_team)
            else:
                kind, label = "phone", f"Phone {mask_phone(transfer.to_phone or '')}"
            consult = {"transfer_id": transfer.id, "kind": kind, "with": label, "stage": transfer.status}
            if state == "consult":
                since = transfer.status_changed_at or transfer.requested_at
        return {
            "session_id": call.id,
            "customer_name": customer_label(call),
            "channel": call.channel,
            "agent_id": call.agent_id,
            "agent_name": names.get(call.agent_id) if call.agent_id else None,
            "status": call.status,
            "state": state,
            "state_label": STATE_LABELS[state],
            "state_since": _iso(since),
            "consult": consult,
            # What a supervisor may do in it (app.services.supervision decides again on the
            # request): nothing before an agent talks to the customer; no whisper to a phone
            # Agent B, whose audio the app cannot keep from the customer.
            "coach": {
                "monitor": call.status in SUPERVISABLE,
                "whisper": call.status in SUPERVISABLE and call.agent_id is not None and not on_phone,
                "barge": call.status in SUPERVISABLE,
                "note": "Agent B is on the phone: whisper is not available." if on_phone else None,
            },
            "agent_on_phone": on_phone,
        }
