"""What the rows of a period mean for a supervisor: outcomes, targets, timings, the trend, the CSV.

Pure: rows in, a report or CSV text out (the queries and the definitions are app.services.stats).
"""
from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from app import states
from app.services.phone_transfers import MACHINE_REASON_CODE

DAY = timedelta(hours=24)
TREND_DAYS = 7
OUTCOMES: tuple[tuple[str, str], ...] = (
    ("completed", "Accepted / completed"),
    ("declined", "Declined"),
    ("no_answer", "Not answered"),
    ("machine", "Voicemail / machine"),
    ("caller_left", "Caller hung up"),
    ("cancelled", "Cancelled"),
    ("failed", "Failed"),
    ("in_progress", "In progress"),
)
TIMINGS = ("time_to_answer", "notify_latency", "consult_length", "handover_gap")
TARGET_KINDS = ("agent", "team", "phone")
CHANNELS = ("web", "phone")
CSV_HEADER = ("transfer_id", "session_id", "requested_at", "from_agent", "target_kind", "target", "outcome", "reason_code",
              "notify_s", "consult_s", "handover_gap_s")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

T = states.TransferStatus
_BY_STATUS = {
    T.COMPLETED: "completed",
    T.DECLINED: "declined",
    T.NO_ANSWER: "no_answer",
    T.BUSY: "no_answer",
    T.CALLER_LEFT: "caller_left",
    T.CANCELLED: "cancelled",
    T.FAILED: "failed",
    T.PENDING: "in_progress",
    T.RINGING: "in_progress",
    T.BRIEFING: "in_progress",
}


def outcome_of(status: str, reason_code: str | None, handed_over: bool) -> str:
    """A transfer's outcome for a supervisor. Agent A leaving counts as completed when the customer
    had been handed to Agent B (briefing had started), else as failed; a machine answering Agent
    B's phone (no_answer with reason_code `machine`) is counted apart from nobody answering."""
    if status == T.AGENT_A_LEFT:
        return "completed" if handed_over else "failed"
    if status in (T.NO_ANSWER, T.BUSY) and reason_code == MACHINE_REASON_CODE:
        return "machine"
    return _BY_STATUS[T(status)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (see the module's docstring)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timing(values: Sequence[float]) -> dict:
    def rounded(q: float) -> float | None:
        value = percentile(values, q)
        return None if value is None else round(value, 3)

    return {"count": len(values), "p50_s": rounded(0.5), "p95_s": rounded(0.95)}


def seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    value = (later - earlier).total_seconds()
    return value if value >= 0 else None


def mask_phone(number: str) -> str:
    return "••" + re.sub(r"\D", "", number)[-4:]


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


# -- the period and its trend windows -----------------------------------------------------------
@dataclass(frozen=True)
class Period:
    start: datetime  # aware, in the offset it was given in (echoed as given; the CSV's file name)
    end: datetime

    def windows(self) -> list[tuple[datetime, datetime]]:
        """The trend's windows, oldest first: 24 h each, the last one starting at `start`."""
        firsts = [self.start - DAY * back for back in range(TREND_DAYS - 1, -1, -1)]
        return [(first, first + DAY) for first in firsts]


# -- rows and the report ----------------------------------------------------------------------------
class CallRow(NamedTuple):
    created_at: datetime
    answered_at: datetime | None
    status: str
    channel: str


class TransferRow(NamedTuple):
    id: str
    call_id: str
    from_agent_id: str
    to_agent_id: str | None
    to_team: str | None
    to_phone: str | None
    status: str
    reason_code: str | None
    requested_at: datetime
    notified_at: datetime | None
    answered_at: datetime | None
    handed_over_at: datetime | None
    bridged_at: datetime | None
    ended_at: datetime | None

    @property
    def outcome(self) -> str:
        return outcome_of(self.status, self.reason_code, self.handed_over_at is not None)

    def timings(self) -> dict[str, float | None]:
        return {
            "notify_latency": seconds(self.notified_at, self.requested_at),
            "consult_length": seconds(self.handed_over_at or self.ended_at, self.answered_at),
            "handover_gap": seconds(self.bridged_at, self.handed_over_at),
        }


@dataclass(frozen=True)
class Names:
    agents: dict[str, str]
    teams: dict[str, str]

    def target(self, t: TransferRow) -> tuple[str, str, str]:
        """(kind, id, label) of who a transfer was for; a phone number only by its last four digits."""
        if t.to_team:
            return "team", t.to_team, self.teams.get(t.to_team, t.to_team)
        if t.to_agent_id:
            return "agent", t.to_agent_id, self.agents.get(t.to_agent_id, t.to_agent_id)
        masked = mask_phone(t.to_phone or "")
        return "phone", masked, f"Phone {masked}"


def within(when: datetime, start: datetime, end: datetime) -> bool:
    return start <= when < end


def _timings(calls: Sequence[CallRow], transfers: Sequence[TransferRow]) -> dict:
    values: dict[str, list[float]] = {name: [] for name in TIMINGS}
    for c in calls:
        values["time_to_answer"].append(seconds(c.answered_at, c.created_at))
    for t in transfers:
        for name, value in t.timings().items():
            values[name].append(value)
    return {name: timing([v for v in found if v is not None]) for name, found in values.items()}


def summarize(period: Period, calls: Sequence[CallRow], transfers: Sequence[TransferRow], missed: int, names: Names) -> dict:
    """The report from rows covering the trend's windows and the period (see the module's docstring)."""
    in_calls = [c for c in calls if within(c.created_at, period.start, period.end)]
    in_transfers = [t for t in transfers if within(t.requested_at, period.start, period.end)]
    outcomes = Counter(t.outcome for t in in_transfers)
    targets: dict[tuple[str, str], dict] = {}
    for t in in_transfers:
        kind, id_, label = names.target(t)
        entry = targets.setdefault((kind, id_), {"kind": kind, "id": id_, "label": label, "count": 0, "completed": 0})
        entry["count"] += 1
        entry["completed"] += t.outcome == "completed"
    channels = Counter(c.channel for c in in_calls)
    trend = []
    for start, end in period.windows():
        window = _timings([c for c in calls if within(c.created_at, start, end)], [t for t in transfers if within(t.requested_at, start, end)])
        trend.append({"day_start": start.isoformat(), "day_end": end.isoformat(), **window})
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "calls": {
            "total": len(in_calls),
            "answered": sum(c.answered_at is not None for c in in_calls),
            "abandoned": sum(c.status == states.CallStatus.ABANDONED for c in in_calls),
            "missed": missed,
            "by_channel": {channel: channels[channel] for channel in CHANNELS},
        },
        "transfers": {
            "total": len(in_transfers),
            "by_outcome": [{"outcome": key, "label": label, "count": outcomes[key]} for key, label in OUTCOMES],
            "by_target": sorted(targets.values(), key=lambda e: (-e["count"], e["label"], e["kind"], e["id"])),
        },
        "timings": _timings(in_calls, in_transfers),
        "trend": trend,
    }


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def write_csv(out, transfers: Sequence[TransferRow], names: Names) -> None:
    """One row per transfer, in the order given; every text cell guarded against formulas."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for t in transfers:
        kind, _id, label = names.target(t)
        timings = t.timings()
        row = (t.id, t.call_id, t.requested_at.isoformat(), names.agents.get(t.from_agent_id, t.from_agent_id), kind, label, t.outcome,
               t.reason_code, _secs(timings["notify_latency"]), _secs(timings["consult_length"]), _secs(timings["handover_gap"]))
        writer.writerow([csv_cell(cell) for cell in row])


def csv_filename(period: Period) -> str:
    return f"transfers-{period.start.date().isoformat()}-{period.end.date().isoformat()}.csv"


