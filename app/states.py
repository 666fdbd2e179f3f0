"""The call and transfer state machines (docs/architecture.md §4), as pure data and functions.

No Flask, no database. Services ask this module which states an event may start from and which
state it leads to, then apply the change as a conditional UPDATE (`... WHERE status IN sources`).
That is what makes a duplicate or late webhook a harmless no-op and lets exactly one of two
concurrent requests win.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallStatus(StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    TRANSFERRED = "transferred"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    FAILED = "failed"


class TransferStatus(StrEnum):
    PENDING = "pending"
    RINGING = "ringing"
    BRIEFING = "briefing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CALLER_LEFT = "caller_left"
    AGENT_A_LEFT = "agent_a_left"


@dataclass(frozen=True)
class Edge:
    sources: frozenset
    target: StrEnum


def _edge(sources, target) -> Edge:
    return Edge(frozenset(sources), target)


C = CallStatus
T = TransferStatus

CALL_LIVE = frozenset({C.QUEUED, C.RINGING, C.ACTIVE, C.ON_HOLD, C.TRANSFERRED})
CALL_TERMINAL = frozenset({C.COMPLETED, C.ABANDONED, C.FAILED})
# Statuses in which the owning agent is talking to the customer and may start a transfer.
CALL_CONNECTED = frozenset({C.ACTIVE, C.TRANSFERRED})

CALL_EVENTS: dict[str, Edge] = {
    "assign": _edge({C.QUEUED}, C.RINGING),
    "agent_joined": _edge({C.RINGING}, C.ACTIVE),
    # The owner left before handing over: the customer goes back to the queue.
    "requeue": _edge({C.RINGING, C.ACTIVE, C.TRANSFERRED}, C.QUEUED),
    # The assigned agent never joined: only ever from ringing, never from a call in progress.
    "miss": _edge({C.RINGING}, C.QUEUED),
    "hold": _edge(CALL_CONNECTED, C.ON_HOLD),
    "resume": _edge({C.ON_HOLD}, C.ACTIVE),
    "hand_over": _edge({C.ON_HOLD}, C.TRANSFERRED),
    "end": _edge({C.RINGING, C.ACTIVE, C.ON_HOLD, C.TRANSFERRED}, C.COMPLETED),
    # The caller left before any agent talked to them.
    "abandon": _edge({C.QUEUED, C.RINGING}, C.ABANDONED),
    "fail": _edge(CALL_LIVE, C.FAILED),
}

TRANSFER_OPEN = frozenset({T.PENDING, T.RINGING, T.BRIEFING})
TRANSFER_TERMINAL = frozenset(set(TransferStatus) - TRANSFER_OPEN)
_NOT_YET_ANSWERED = {T.PENDING, T.RINGING}

TRANSFER_EVENTS: dict[str, Edge] = {
    "ring": _edge({T.PENDING}, T.RINGING),
    "accept": _edge({T.RINGING}, T.BRIEFING),
    "complete": _edge({T.BRIEFING}, T.COMPLETED),
    "cancel": _edge(TRANSFER_OPEN, T.CANCELLED),
    # Agent B may also bow out after hearing the briefing.
    "decline": _edge(TRANSFER_OPEN, T.DECLINED),
    "no_answer": _edge(_NOT_YET_ANSWERED, T.NO_ANSWER),
    "busy": _edge(_NOT_YET_ANSWERED, T.BUSY),
    "fail": _edge(TRANSFER_OPEN, T.FAILED),
    "caller_left": _edge(TRANSFER_OPEN, T.CALLER_LEFT),
    "agent_a_left": _edge(TRANSFER_OPEN, T.AGENT_A_LEFT),
}

# Transfer outcomes that end a transfer without completing it, and the event type Agent A sees.
FAILURE_EVENT_TYPE = {
    T.CANCELLED: "transfer_cancelled",
    T.DECLINED: "transfer_declined",
    T.NO_ANSWER: "transfer_failed",
    T.BUSY: "transfer_failed",
    T.FAILED: "transfer_failed",
    T.CALLER_LEFT: "transfer_failed",
    T.AGENT_A_LEFT: "transfer_failed",
}


class InvalidTransition(Exception):
    def __init__(self, machine: str, current: str, event: str):
        super().__init__(f"{machine} in state {current!r} cannot {event.replace('_', ' ')}")
        self.machine, self.current, self.event = machine, current, event


def _table(machine: str) -> dict[str, Edge]:
    if machine == "call":
        return CALL_EVENTS
    if machine == "transfer":
        return TRANSFER_EVENTS
    raise ValueError(f"unknown machine {machine!r}")


def edge(machine: str, event: str) -> Edge:
    try:
        return _table(machine)[event]
    except KeyError:
        raise ValueError(f"unknown {machine} event {event!r}") from None


def apply(machine: str, current: str, event: str) -> str:
    """The state after `event`, or InvalidTransition. Pure: used by tests and for messages."""
    e = edge(machine, event)
    if current not in e.sources:
        raise InvalidTransition(machine, current, event)
    return str(e.target)


def can(machine: str, current: str, event: str) -> bool:
    return current in edge(machine, event).sources


def is_terminal(machine: str, status: str) -> bool:
    return status in (CALL_TERMINAL if machine == "call" else TRANSFER_TERMINAL)


# -- Agent B's phone leg --------------------------------------------------------------------------
# Twilio reports a call's progress (CallStatus) in status callbacks that may arrive late, twice or
# out of order. The leg's recorded status only ever moves to a higher rank, so a "ringing" that
# arrives after "in-progress" or "completed" changes nothing.
LEG_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
LEG_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, **{s: 4 for s in LEG_FINAL}}


def leg_statuses_below(status: str) -> list[str]:
    """The recorded leg statuses that `status` may replace (those of a lower rank)."""
    rank = LEG_RANK[status]
    return [s for s, r in LEG_RANK.items() if r < rank]
