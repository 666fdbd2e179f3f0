"""Server-Sent Events framing for one agent's stream.

The generator runs after the request context is gone, so it gets everything it needs as
arguments. It subscribes before reading any backlog, so nothing written in between is missed;
ids already sent are skipped, so nothing is sent twice.
"""
from __future__ import annotations

import json
import random
from collections import deque
from datetime import datetime, timezone
from typing import Iterator

from app.events import Delivered, fetch_for_audience
from app.services.agents import AuthContext


def frame(item: Delivered) -> str:
    data = json.dumps(dict(item.payload, event_id=item.id, created_at=item.created_at.isoformat()), separators=(",", ":"))
    return f"id: {item.id}\nevent: {item.type}\ndata: {data}\n\n"


def event_stream(services, auth: AuthContext, last_event_id: int | None) -> Iterator[str]:
    dispatcher = services.dispatcher
    sub = dispatcher.subscribe(auth.agent_id)
    heartbeat = services.settings.SSE_HEARTBEAT_S

    def generate() -> Iterator[str]:
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

        try:
            yield "retry: 2000\n\n"
            if last_event_id is None:
                # A fresh stream starts now; the id lets a reconnect resume from here.
                yield f"id: {dispatcher.high_water}\nevent: ready\ndata: {{}}\n\n"
            else:
                cursor = last_event_id
                while True:
                    backlog = fetch_for_audience(services.db, auth.agent_id, cursor, 500)
                    for item in backlog:
                        if item.type != "session_ended" and fresh(item):
                            yield frame(item)
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
                if sub.ready.wait(interval):
                    for item in sub.drain():
                        if item.type == "session_ended":
                            # No session_ref: every session of the agent ended (password
                            # changed, account disabled, sessions revoked by an operator).
                            if item.payload.get("session_ref") in (None, auth.session_ref):
                                yield frame(item)
                                return
                            continue  # another tab's session of the same agent
                        if fresh(item):
                            yield frame(item)
                    continue
                if auth.expires_at <= datetime.now(timezone.utc):
                    yield 'event: session_ended\ndata: {"reason": "expired"}\n\n'
                    return
                yield ": keepalive\n\n"
        finally:
            dispatcher.unsubscribe(sub)

    return generate()
