"""Notifications for agents: the polling route (as in the original) and the SSE stream."""
from __future__ import annotations

from flask import Response, g, jsonify, request

from app.api import bp
from app.api.guards import agent_required
from app.current import services
from app.errors import ValidationFailed
from app.sse import EventStreamResponse

MAX_EVENT_ID = 2**31 - 1


def _event_id(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    # ASCII digits only ("²" and "١٢" are digits to str.isdigit), and no larger than the events
    # table's id column can hold (a 32-bit integer on PostgreSQL).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_EVENT_ID:
        raise ValidationFailed(f"{name} must be an event id: an integer from 0 to {MAX_EVENT_ID}.")
    return int(raw)


@bp.get("/notifications/<agent_id>")
@agent_required
def notifications(agent_id: str):
    unknown = sorted(set(request.args) - {"since"})
    if unknown:
        raise ValidationFailed(f"Unknown query parameter(s): {', '.join(unknown)}.")
    since = _event_id(request.args.get("since"), "since")
    return jsonify(notifications=services().notifications.page(g.agent, agent_id, since))


@bp.get("/events")
@agent_required
def events():
    last = _event_id(request.headers.get("Last-Event-ID"), "Last-Event-ID")
    if last is None:
        last = _event_id(request.args.get("since"), "since")
    stream = EventStreamResponse(services(), g.agent, last)
    return Response(
        stream,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no", "Connection": "keep-alive"},
    )
