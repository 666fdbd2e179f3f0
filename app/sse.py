"""Server-Sent Events framing for one agent's stream.

The generator runs after the request context is gone, so it gets everything it needs as
arguments. It subscribes before reading any backlog, so nothing written in between is missed;
ids already sent are skipped, so nothing is sent twice.

Limits (docs/architecture.md, "Event streams"): a process holds at most
GUNICORN_THREADS - SSE_THREAD_RESERVE streams (Dispatcher.subscribe refuses more with 503, and
the dashboard polls instead), and an agent at most SSE_STREAMS_PER_AGENT / SESSION across every
process (app.services.streams: a new stream closes the oldest). Streams stay on request threads
rather than an event loop: gthread parks idle keep-alive connections without a thread, the
reserve keeps webhooks answered, and the whole app stays one synchronous code base.
"""
from __future__ import annotations

import json
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.events import Delivered, fetch_for_audience
from app.models import utcnow
from app.repo import mark_notified
from app.services.agents import AuthContext

log = logging.getLogger(__name__)

# Events that steer streams themselves: never replayed from the backlog, and passed on only to
# the stream (or session) they name.
_CONTROL = frozenset({"session_ended", "stream_replaced"})


def frame(item: Delivered) -> str:
    data = json.dumps(dict(item.payload, event_id=item.id, created_at=item.created_at.isoformat()), separators=(",", ":"))
    return f"id: {item.id}\nevent: {item.type}\ndata: {data}\n\n"


def view_frame(event: str, event_id: int, view: dict) -> str:
    """A frame carrying a whole view (a customer's status, a supervisor's floor); its id is the
    dispatcher's high-water mark when the view was read."""
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(view, separators=(',', ':'))}\n\n"


EXPIRED_FRAME = 'event: session_ended\ndata: {"reason": "expired"}\n\n'


def ending_frame(item: Delivered, auth: AuthContext, stream_id: str) -> str | None:
    """The frame that ends this agent's stream, if `item` is a control event meant for it: the end
    of its login (no session_ref: every login of the agent ended, as when the password changed,
    the account was disabled or its sessions revoked), or its replacement by a newer stream (the
    browser must not reconnect: it would close the newer tab in turn; it polls instead)."""
    if item.audience != auth.agent_id:
        return None
    if item.type == "session_ended" and item.payload.get("session_ref") in (None, auth.login_ref):
        return frame(item)
    if item.type == "stream_replaced" and stream_id in item.payload.get("stream_ids", ()):
        return frame(item)
    return None


class StreamBody:
    """A streaming response body that holds a dispatcher subscription and a stream row (which the
    per-agent or per-call limits count over every process). Whether or not it was ever iterated,
    it gives both back when the server closes it: a client that hangs up before the first byte
    must not hold a slot. `sub` is taken first by the caller: a full process refuses there,
    before any row is written."""

    def __init__(self, services, sub, registry, open_row: Callable[[], str], body: Callable[[str], Iterator[str]]):
        self.services = services
        self.sub = sub
        self._registry = registry
        try:
            self.stream_id = open_row()
        except Exception:
            services.dispatcher.unsubscribe(sub)
            raise
        metrics.SSE_STREAMS.inc()  # given back in close(), which the server always calls
        self._closed = False
        self._body = body(self.stream_id)

    def __iter__(self) -> Iterator[str]:
        return self._body

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        metrics.SSE_STREAMS.dec()
        self._body.close()
        self.services.dispatcher.unsubscribe(self.sub)
        try:
            self._registry.close(self.stream_id)
        except SQLAlchemyError:
            # The row is then the oldest of its agent (or call) and goes at the next open, or with
            # the session (or call).
            log.warning("could not delete event stream %s; it will be pruned", self.stream_id, exc_info=True)


class EventStreamResponse(StreamBody):
    """One agent's stream (GET /api/events)."""

    def __init__(self, services, auth: AuthContext, last_event_id: int | None):
        # Subscribe first: the stream_replaced event for a tab opened right after this one must
        # reach us, and a full process refuses here, before any row is written.
        sub = services.dispatcher.subscribe(auth.agent_id)
        super().__init__(services, sub, services.streams, lambda: services.streams.open(auth.agent_id, auth.login_id),
                         lambda stream_id: _generate(services, auth, last_event_id, sub, stream_id))


def _delivered(db, item: Delivered) -> None:
    """After a frame was written (the server asks for the next one only once it has): a
    transfer_requested event has reached Agent B (it is addressed to them alone, or to each
    member offered a team transfer: the first member's stream counts).

    The first time in this process it is observed (wt_transfer_notify_seconds) and recorded as
    `transfers.notified_at` (one conditional UPDATE, kept if another process was first). A
    database that fails here must not end the stream: the time is then simply not recorded."""
    if item.type != "transfer_requested" or not item.payload.get("transfer_id"):
        return
    transfer_id = item.payload["transfer_id"]
    if not metrics.agent_b_notified(transfer_id, item.created_at):
        return
    now = utcnow()
    try:
        with db.transaction() as s:
            mark_notified(s, transfer_id, now)
    except SQLAlchemyError:
        log.warning("could not record when transfer %s reached Agent B", transfer_id, exc_info=True)


def _generate(services, auth: AuthContext, last_event_id: int | None, sub, stream_id: str) -> Iterator[str]:
    dispatcher = services.dispatcher
    heartbeat = services.settings.SSE_HEARTBEAT_S
    sent: deque[int] = deque(maxlen=2000)
    sent_set: set[int] = set()

    def fresh(item: Delivered) -> bool:
        if item.id in sent_set:
            return False
        if len(sent) == sent.maxlen:
            sent_set.discard(sent[0])
        sent.append(item.id)
        sent_set.add(item.id)
        return True

    def expired() -> bool:
        return auth.expires_at <= datetime.now(UTC)

    yield "retry: 2000\n\n"
    if last_event_id is None:
        # A fresh stream starts now; the id lets a reconnect resume from here.
        yield f"id: {dispatcher.high_water}\nevent: ready\ndata: {{}}\n\n"
    else:
        cursor = last_event_id
        while True:
            backlog = fetch_for_audience(services.db, auth.agent_id, cursor, 500)
            for item in backlog:
                if item.type not in _CONTROL and fresh(item):
                    yield frame(item)
                    _delivered(services.db, item)
            if len(backlog) < 500:
                break
            cursor = backlog[-1].id
        yield "event: ready\ndata: {}\n\n"
    # Heartbeats are jittered so hundreds of streams opened together do not all wake at once.
    interval = heartbeat * random.uniform(0.8, 1.2)
    while not sub.closed:
        if sub.overflowed:
            yield ": too far behind; reconnect to catch up\n\n"
            return
        woke = sub.ready.wait(interval)
        # Checked before anything is sent, so a stream kept busy by events still notices (the
        # heartbeat alone would never come round).
        if expired():
            yield EXPIRED_FRAME
            return
        if not woke:
            yield ": keepalive\n\n"
            continue
        for item in sub.drain():
            ending = ending_frame(item, auth, stream_id)
            if ending:
                yield ending
                return
            if item.type in _CONTROL:
                continue  # another tab's session or stream of the same agent
            if fresh(item):
                yield frame(item)
                _delivered(services.db, item)
