"""Notifications for agents: the polling route (as in the original) and the SSE stream."""
from __future__ import annotations

from flask import Response, g, jsonify, request

from app.api import bp
from app.api.guards import agent_required
from app.api.validation import event_id as _event_id
from app.current import services
from app.errors import ValidationFailed
from app.sse import EventStreamResponse


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
