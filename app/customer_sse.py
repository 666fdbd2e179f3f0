"""A web customer's status stream (GET /api/calls/<id>/events): the `customer_view` of their call
(the same JSON as GET /api/calls/<id>/status) on connect and again whenever it changes, ending
with the call.

Changes reach it through the event store: every change a customer can see is written with an
event about the call (call_assigned, call_active, transfer_requested, transfer_cancelled,
transfer_completed, call_ended, ...), whoever it is addressed to. The process's dispatcher hands
every event of the call to the stream (`Dispatcher.subscribe_call`), which re-reads the view and
sends it if it differs from the last one sent; the events themselves (notes, summaries, transfer
reasons) never reach the customer. Each heartbeat re-reads the view as well, so a change written
without an event would still arrive within SSE_HEARTBEAT_S.

Frame ids are the dispatcher's high-water mark when the view was read, so they only rise. A
reconnect (EventSource sends Last-Event-ID by itself) gets the current view at once: a status
supersedes every earlier one, so the newest is all a client that was away has missed.

Limits are those of agents' streams: the per-process thread reserve (the dispatcher refuses with
503 streams_full before anything is written) and SSE_STREAMS_PER_CALL over all processes
(app.services.streams.CustomerStreamRegistry: the oldest stream of the call ends with
`stream_replaced`, noticed at its next read). `close_local_streams` ends these too.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Iterator

from app import states
from app.errors import NotFound
from app.protocol import CUSTOMER_STATUS_EVENT, CUSTOMER_STREAM_REPLACED_EVENT
from app.sse import StreamBody, view_frame

log = logging.getLogger(__name__)


class CustomerStreamResponse(StreamBody):
    """A customer's stream; its row counts against SSE_STREAMS_PER_CALL."""

    def __init__(self, services, call_id: str):
        # Subscribe before the first read, so a change committed in between still wakes us.
        sub = services.dispatcher.subscribe_call(call_id)
        super().__init__(services, sub, services.customer_streams, lambda: services.customer_streams.open(call_id),
                         lambda stream_id: _generate(services, call_id, sub, stream_id))


def _generate(services, call_id: str, sub, stream_id: str) -> Iterator[str]:
    dispatcher = services.dispatcher
    heartbeat = services.settings.SSE_HEARTBEAT_S
    last: dict | None = None

    def read() -> tuple[dict | None, bool]:
        """(the view, or None if the call is gone; whether this stream still holds its row)."""
        try:
            view = services.calls.customer_view(call_id)
        except NotFound:
            return None, True
        with services.db.reading() as s:
            return view, services.customer_streams.is_open(s, stream_id)

    yield "retry: 2000\n\n"
    interval = heartbeat * random.uniform(0.8, 1.2)  # jittered, as for agents' streams
    first, woke = True, True
    while not sub.closed:
        if not first:
            if sub.overflowed:
                yield ": too far behind; reconnect to catch up\n\n"
                return
            woke = sub.ready.wait(interval)
            if sub.closed:
                return
            sub.drain()  # what happened does not matter, only the view it leaves
        event_id = dispatcher.high_water
        view, still_open = read()
        if view is None:
            return  # deleted by retention: a reconnect is answered 404, and the page polls
        if not still_open:
            # Too many streams for this call: a newer page has it. Not retried by the page.
            yield f'event: {CUSTOMER_STREAM_REPLACED_EVENT}\ndata: {{"reason":"too_many_streams"}}\n\n'
            return
        if view != last:
            last = view
            yield view_frame(CUSTOMER_STATUS_EVENT, event_id, view)
        elif not first and not woke:
            yield ": keepalive\n\n"
        first = False
        if states.is_terminal("call", view["status"]):
            return
