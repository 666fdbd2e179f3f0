"""The Prometheus metrics (docs/architecture.md §12): every instrument, defined once, with the
closed sets its labels may take.

Services, gateways and the edges record here; nothing here reads the database or serves HTTP
(app.metrics_export renders a scrape, app.metrics_web and app.worker.metrics_server serve it).
Label values are always from a small closed set (the state machines' outcomes, the wire
contract's channels, the blueprints' endpoints), never an id or free text: every distinct label
value is a time series Prometheus keeps, and in multiprocess mode a key in every process's file.

Under gunicorn the instruments write to per-process files in PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py sets it before the workers fork); prometheus_client picks that mode when it is
imported, from the environment, which is why nothing here decides it.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from app import states
from app.protocol import CALL_FINAL_STATUSES

log = logging.getLogger(__name__)

# -- the closed label sets ------------------------------------------------------------------------
CHANNELS = ("web", "phone")  # calls.channel
TARGETS = ("agent", "phone")  # who a transfer brings in: a dashboard agent or a phone number
CALL_OUTCOMES = CALL_FINAL_STATUSES  # completed, abandoned, failed
TRANSFER_OUTCOMES = tuple(str(s) for s in states.TransferStatus if s in states.TRANSFER_TERMINAL)
SYSTEMS = ("twilio", "livekit", "llm", "database")
# What a failed request to an external system was, in a few words a dashboard can group by.
# LLM failures use the provider error's kind (app.summaries.llm.LLMProviderError.kind) instead.
ERROR_CODES = ("timeout", "unavailable", "http_4xx", "http_429", "http_5xx", "connection_lost", "pool_timeout")
LLM_ERROR_KINDS = ("auth", "rate_limited", "server", "timeout", "connection", "bad_request", "bad_output", "unexpected")
LLM_PROVIDERS = ("groq", "openai", "offline")
LLM_OUTCOMES = ("ok", "error", "timeout")
OTHER = "other"

# -- the instruments --------------------------------------------------------------------------------
CALLS = Counter("wt_calls", "Calls that ended, by channel (web, phone) and final status.", ["channel", "outcome"])
TRANSFERS = Counter("wt_transfers", "Transfers that ended, by target (agent, phone) and final status.", ["target", "outcome"])
TRANSFER_NOTIFY = Histogram(
    "wt_transfer_notify_seconds",
    "From initiate-transfer to Agent B first being told: the transfer_requested event written to one of their "
    "event streams (target=agent), or Agent B's phone call placed with Twilio (target=phone).",
    ["target"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
HANDOVER_GAP = Histogram(
    "wt_handover_gap_seconds",
    "From the hand-over (Agent A released and removed from the customer's room) to LiveKit reporting Agent B "
    "in that room (transfers.bridged_at).",
    ["target"],
    buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 45, 60, 120),
)
QUEUE_WAIT = Histogram(
    "wt_queue_wait_seconds",
    "How long a call waited for an agent: from arrival (or going back to the queue) to being assigned.",
    ["channel"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
# livesum: the streams open now in the processes that are alive (a dead worker's streams are gone
# with it; gunicorn.conf.py's child_exit removes its file).
SSE_STREAMS = Gauge("wt_sse_streams", "Live event streams open now: agents' (GET /api/events), web customers' status and supervisors' floor streams.", multiprocess_mode="livesum")
WEBHOOK_SECONDS = Histogram(
    "wt_webhook_seconds",
    "Time to answer a Twilio or LiveKit webhook, by route (the Flask endpoint name).",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
LLM_SECONDS = Histogram(
    "wt_llm_seconds",
    "Time to a summary from the provider (offline: the built-in summarizer), by provider and outcome "
    "(error and timeout fall back to the offline summary).",
    ["provider", "outcome"],
    buckets=(0.01, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 10, 30),
)
EXTERNAL_ERRORS = Counter(
    "wt_external_errors",
    "Failed requests to an external system (twilio, livekit, llm, database), by a short error code.",
    ["system", "code"],
)
# wt_tasks{state} is not an instrument: it is read from the tasks table at scrape time
# (app.metrics_export.TaskStates), so it is right whichever process ran the tasks.

# Every combination of a closed set starts at 0, so a rate() sees the first increase and a
# dashboard shows every outcome, not only those that have happened since the last restart.
for _channel in CHANNELS:
    for _outcome in CALL_OUTCOMES:
        CALLS.labels(_channel, _outcome)
for _target in TARGETS:
    for _outcome in TRANSFER_OUTCOMES:
        TRANSFERS.labels(_target, _outcome)


def closed(value: str | None, allowed: tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`, else "other": a label never takes an unforeseen value."""
    return value if value in allowed else OTHER


def target_of(to_phone: str | None) -> str:
    return "phone" if to_phone else "agent"


def seconds_since(then: datetime, now: datetime | None = None) -> float:
    """Seconds from `then` (an aware UTC datetime, as the database returns them) to now, never < 0."""
    return max(((now or datetime.now(UTC)) - then).total_seconds(), 0.0)


# -- recording ------------------------------------------------------------------------------------
def call_ended(channel: str | None, outcome: str) -> None:
    CALLS.labels(closed(channel, CHANNELS), closed(outcome, CALL_OUTCOMES)).inc()


def transfer_ended(to_phone: str | None, outcome: str) -> None:
    TRANSFERS.labels(target_of(to_phone), closed(outcome, TRANSFER_OUTCOMES)).inc()


def external_error(system: str, code: str) -> None:
    allowed = LLM_ERROR_KINDS if system == "llm" else ERROR_CODES
    EXTERNAL_ERRORS.labels(closed(system, SYSTEMS), closed(code, allowed)).inc()


def http_error_code(status: int | None) -> str:
    """A vendor's HTTP status as an error code: http_429 (rate limited) apart, else by class."""
    if status == 429:
        return "http_429"
    if status is not None and status >= 500:
        return "http_5xx"
    return "http_4xx" if status is not None and status >= 400 else "unavailable"


# -- only what committed ----------------------------------------------------------------------------
_PENDING = "wt_metrics_pending"
_LISTENING = "wt_metrics_listening"


def after_commit(session, record: Callable[[], None]) -> None:
    """Run `record` when `session`'s transaction commits, and never if it rolls back.

    Outcomes are decided inside transactions that may still lose a race or fail to commit; a
    counter bumped there would count what never happened. (The same listener pattern as
    app.events.emit's wake-up.)"""
    from sqlalchemy import event as sa_event

    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        sa_event.listen(session, "after_commit", _flush)
        sa_event.listen(session, "after_rollback", _discard)
    session.info.setdefault(_PENDING, []).append(record)


def _flush(session) -> None:
    for record in session.info.pop(_PENDING, []):
        try:
            record()
        except Exception:  # a metric must never fail a change that has already committed
            log.exception("recording a metric failed")


def _discard(session) -> None:
    session.info.pop(_PENDING, None)


# -- once per transfer --------------------------------------------------------------------------------
class FirstSeen:
    """Remembers the last `size` keys, so something seen several times in this process (Agent B's
    two tabs, a reconnect replaying the backlog) is recorded once. Per process: see §12."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True


_notified = FirstSeen()


def agent_b_notified(transfer_id: str, requested_at: datetime) -> bool:
    """The transfer_requested event reached one of Agent B's streams (app.sse). True the first
    time in this process (and only then observed), so the caller records it once too."""
    if not _notified.first(transfer_id):
        return False
    TRANSFER_NOTIFY.labels("agent").observe(seconds_since(requested_at))
    return True
