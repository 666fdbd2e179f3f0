"""Supervisor statistics: how calls and warm transfers went over a period, read from the database
(`GET /api/stats`, `GET /api/stats.csv`; docs/architecture.md §12, "Supervisor statistics").

The period is [from, to). Definitions:
- A call is in the period when `calls.created_at` is in it; a transfer when `transfers.requested_at` is.
- `calls.answered`: calls with `answered_at` set. `answered_at` is written by the call's
  `agent_joined` transition (ringing -> active): the assigned agent taking a token for the
  customer's room (`POST /api/token`) or LiveKit reporting them in it, whichever comes first. A
  call sent back to the queue after it was answered (its agent left before a hand-over) is
  answered again by the next agent, and `answered_at` then holds that later answer.
  `abandoned`: status `abandoned` (the caller left before any agent talked to them). `missed`:
  `call_missed` events created in the period, each emit once: an agent given the call who did not
  take it (not joined within AGENT_ANSWER_TIMEOUT_S, `routing.answer_missed`; an Agent B who never
  reached the customer after a hand-over, `arrivals`; an agent whose microphone failed). Events
  are pruned after EVENT_RETENTION_DAYS, so older periods count fewer.
- Timings, in seconds, each left out when a time is missing or the difference is negative:
  `time_to_answer` = answered_at - created_at (answered calls); `notify_latency` = notified_at -
  requested_at (`notified_at`: Agent B's stream got the event, or their phone call was placed);
  `consult_length` = from Agent B answering (`transfers.answered_at`) to the hand-over, or to the
  transfer's end when there was none (answered transfers only); `handover_gap` = bridged_at -
  handed_over_at (LiveKit reporting Agent B in the customer's room).
- Percentiles: linear interpolation between the closest ranks (position (n - 1) * q in the sorted
  values; numpy's default, `statistics.quantiles(method="inclusive")`), rounded to milliseconds;
  null when there are no values.
- Outcomes: see `outcome_of`. Targets: a team transfer (`to_team`) counts for its team whoever
  took it; otherwise the agent (also one reached on their phone because they were offline);
  otherwise the number, shown by its last four digits only (numbers sharing them count together).
- Trend: 7 windows of 24 hours, the last one starting at `from` (with local midnight as `from`,
  the last 7 local days, give or take a daylight-saving hour); whole windows, not cut at `to`.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import distinct, func, select

from app.db import Database
from app.errors import ValidationFailed
from app.models import Agent, Call, Event, Team, Transfer, utcnow
from app.services.stats_report import DAY, TREND_DAYS, CallRow, Names, Period, TransferRow, summarize, within, write_csv

MAX_SPAN = timedelta(days=31)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
INSTANT_MAX_LEN = 64
EXAMPLE = "2024-05-01T00:00:00+02:00"


# -- the period ---------------------------------------------------------------------------------------
def parse_instant(raw: str, name: str) -> datetime:
    """An ISO 8601 date and time with a UTC offset (or Z), from a query parameter."""
    example = f"e.g. {name}={EXAMPLE}"
    if not raw.strip():
        raise ValidationFailed(f"{name} is empty: give a date and time with a UTC offset ({example}), or leave {name} out.")
    if len(raw) > INSTANT_MAX_LEN or not raw.isascii():
        raise ValidationFailed(f"{name} must be an ISO 8601 date and time with a UTC offset ({example}).")
    try:
        value = datetime.fromisoformat(raw.upper())  # RFC 3339 allows a lowercase t and z
    except ValueError:
        hint = " A '+' in a URL's query must be sent as %2B (unencoded it arrives as a space)." if " " in raw else ""
        raise ValidationFailed(f"{name} is not an ISO 8601 date and time with a UTC offset ({example}).{hint}") from None
    offset = value.utcoffset()
    if offset is None:
        raise ValidationFailed(f"{name} has no UTC offset: add Z or one like +02:00 ({example}); without one it could be any time zone's time.")
    if offset % timedelta(minutes=1):
        raise ValidationFailed(f"{name}'s UTC offset must be whole minutes ({example}).")
    try:
        in_range = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValidationFailed(f"{name} must be from {EARLIEST.year} to {LATEST.year - 1}.")
    return value


def parse_period(raw_from: str | None, raw_to: str | None, now: datetime) -> Period:
    """`to` defaults to now, `from` to 24 hours before `to`; at most MAX_SPAN long."""
    end = parse_instant(raw_to, "to") if raw_to is not None else now
    start = parse_instant(raw_from, "from") if raw_from is not None else end - DAY
    if start >= end:
        raise ValidationFailed("from must be before to (to is now unless given).")
    if end - start > MAX_SPAN:
        raise ValidationFailed(f"The period may be at most {MAX_SPAN.days} days long.")
    return Period(start, end)


# -- the database -------------------------------------------------------------------------------------
_CALL_COLUMNS = (Call.created_at, Call.answered_at, Call.status, Call.channel)
_TRANSFER_COLUMNS = tuple(getattr(Transfer, name) for name in TransferRow._fields)


def missed_calls(s, start: datetime, end: datetime | None = None) -> int:
    """How many times in [start, end) a call was given to an agent who never reached the customer:
    `call_missed` events, each emit counted once (however many recipients its rows have)."""
    query = select(func.count(distinct(Event.event_key))).where(Event.type == "call_missed", Event.created_at >= start)
    if end is not None:
        query = query.where(Event.created_at < end)
    return s.scalar(query) or 0


class StatsService:
    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    def period(raw_from: str | None, raw_to: str | None) -> Period:
        return parse_period(raw_from, raw_to, utcnow())

    def report(self, period: Period) -> dict:
        # The trend's windows reach back 6 days before `from`, and the last one may end after `to`.
        low, high = period.start - DAY * (TREND_DAYS - 1), max(period.end, period.start + DAY)
        with self.db.reading() as s:
            calls = [CallRow(*row) for row in s.execute(select(*_CALL_COLUMNS).where(Call.created_at >= low, Call.created_at < high))]
            transfers = self._transfers(s, low, high)
            missed = missed_calls(s, period.start, period.end)
            names = self._names(s, [t for t in transfers if within(t.requested_at, period.start, period.end)])
        return summarize(period, calls, transfers, missed, names)

    def transfers_csv(self, period: Period) -> str:
        with self.db.reading() as s:
            transfers = self._transfers(s, period.start, period.end)
            names = self._names(s, transfers)
        out = io.StringIO()
        write_csv(out, sorted(transfers, key=lambda t: (t.requested_at, t.id)), names)
        return out.getvalue()

    @staticmethod
    def _transfers(s, low: datetime, high: datetime) -> list[TransferRow]:
        query = select(*_TRANSFER_COLUMNS).where(Transfer.requested_at >= low, Transfer.requested_at < high)
        return [TransferRow(*row) for row in s.execute(query)]

    @staticmethod
    def _names(s, transfers: Sequence[TransferRow]) -> Names:
        agent_ids = sorted({t.from_agent_id for t in transfers} | {t.to_agent_id for t in transfers if t.to_agent_id})
        team_ids = sorted({t.to_team for t in transfers if t.to_team})
        agents = dict(s.execute(select(Agent.id, Agent.name).where(Agent.id.in_(agent_ids))).all()) if agent_ids else {}
        teams = dict(s.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))).all()) if team_ids else {}
        return Names(agents, teams)
