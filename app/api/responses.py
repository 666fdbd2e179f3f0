"""Answers several routes give alike: an event stream, and what may not be cached."""
from __future__ import annotations

from flask import Response

# Customers' names, agents' work, a recording: for this browser only, never a shared cache.
PRIVATE_NO_STORE = "private, no-store"


def event_stream(body) -> Response:
    """A Server-Sent Events answer: not cached or transformed by any proxy, and not buffered by
    nginx (X-Accel-Buffering), so each frame leaves when it is written."""
    return Response(
        body,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no", "Connection": "keep-alive"},
    )
