"""A supervisor's floor stream (GET /api/supervisor/events): the floor (app.services.floor) on
connect and again whenever it changes.

Every change the floor shows is written with an event (a call arriving, assigned, answered, on
hold, transferred, ended; a transfer's every step; a missed call), whoever it is addressed to, so
the stream subscribes to every event (`Dispatcher.subscribe_everything`) and re-reads the floor
when one arrives. Events come in bursts (a transfer writes several in one commit), so after a
wake it waits FLOOR_SETTLE_S and reads once for the whole burst. Presence changes and the per-
agent counts are not all events: the floor is also re-read every FLOOR_REFRESH_S, and sent only if
it differs from the last one sent (compared without its `server_time`).

The stream is one of the supervisor's event streams: it holds a row in the same registry as
their console's (app.services.streams), so it counts against SSE_STREAMS_PER_SESSION / AGENT and
the per-process thread reserve, and ends like the console's stream on `stream_replaced` (naming
it) and `session_ended` (their login), and when the login expires. Frame ids are the
dispatcher's high-water mark; a floor supersedes every earlier one, so a reconnect simply gets
the current floor.
"""
from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from app.protocol import FLOOR_EVENT
from app.services.agents import AuthContext
from app.services.floor import Window
from app.sse import EXPIRED_FRAME, StreamBody, ending_frame, view_frame

FLOOR_SETTLE_S = 0.2
FLOOR_REFRESH_S = 5.0
# Every event anywhere wakes every floor stream; a busy floor is re-read at most this often.
FLOOR_MIN_GAP_S = 1.0


class FloorStreamResponse(StreamBody):
    def __init__(self, services, auth: AuthContext, window: Window):
        sub = services.dispatcher.subscribe_everything()
        super().__init__(services, sub, services.streams, lambda: services.streams.open(auth.agent_id, auth.login_id),
                         lambda stream_id: _generate(services, auth, window, sub, stream_id))


def _generate(services, auth: AuthContext, window: Window, sub, stream_id: str) -> Iterator[str]:
    dispatcher = services.dispatcher
    refresh = min(FLOOR_REFRESH_S, services.settings.SSE_HEARTBEAT_S)
    heartbeat = services.settings.SSE_HEARTBEAT_S * random.uniform(0.8, 1.2)
    last: dict | None = None
    quiet_since = datetime.now(UTC)
    last_read = 0.0

    yield "retry: 2000\n\n"
    first = True
    while not sub.closed:
        if not first:
            if sub.overflowed:
                yield ": too far behind; reconnect to catch up\n\n"
                return
            if sub.ready.wait(refresh):
                # Let the rest of a burst arrive, one read for all of it, and keep reads apart.
                time.sleep(max(FLOOR_SETTLE_S, FLOOR_MIN_GAP_S - (time.monotonic() - last_read)))
            if sub.closed:
                return
            for item in sub.drain():
                ending = ending_frame(item, auth, stream_id)
                if ending:
                    yield ending
                    return
        if auth.expires_at <= datetime.now(UTC):
            yield EXPIRED_FRAME
            return
        last_read = time.monotonic()
        event_id = dispatcher.high_water
        floor = services.floor.snapshot(window)
        # The role is checked at every read, not only when the stream opened: an account made an
        # agent again (`agents set-role`) or disabled stops seeing the floor at once. The floor
        # lists every enabled account with its role, so this costs no read of its own.
        if not any(a["agent_id"] == auth.agent_id and a["role"] == "supervisor" for a in floor["agents"]):
            yield 'event: session_ended\ndata: {"reason": "not_supervisor"}\n\n'
            return
        comparable = {k: v for k, v in floor.items() if k != "server_time"}
        now = datetime.now(UTC)
        if comparable != last:
            last = comparable
            quiet_since = now
            yield view_frame(FLOOR_EVENT, event_id, floor)
        elif (now - quiet_since).total_seconds() >= heartbeat:
            quiet_since = now
            yield ": keepalive\n\n"
        first = False
