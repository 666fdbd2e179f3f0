"""Notifications for agents: the polling route (as in the original) and the SSE stream."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.guards import agent_required
from app.api.responses import event_stream
from app.api.validation import event_id as _event_id
from app.api.validation import only_params
from app.current import services
from app.sse import EventStreamResponse


@bp.get("/notifications/<agent_id>")
@agent_required
def notifications(agent_id: str):
    only_params(request.args, {"since"})
    since = _event_id(request.args.get("since"), "since")
    return jsonify(notifications=services().notifications.page(g.agent, agent_id, since))


@bp.get("/events")
@agent_required
def events():
    last = _event_id(request.headers.get("Last-Event-ID"), "Last-Event-ID")
    if last is None:
        last = _event_id(request.args.get("since"), "since")
    stream = EventStreamResponse(services(), g.agent, last)
    return event_stream(stream)
