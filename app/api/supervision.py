"""Supervisors: the floor (app.services.floor) and its live stream, and monitor, whisper,
barge in live calls (app.services.supervision)."""
from __future__ import annotations

from datetime import timedelta

from flask import g, jsonify, request

from app.api import bp
from app.api.guards import supervisor_required
from app.api.responses import PRIVATE_NO_STORE, event_stream
from app.api.validation import ID, Field, only_params, parse_json
from app.current import services
from app.errors import ValidationFailed
from app.floor_sse import FloorStreamResponse
from app.models import utcnow
from app.serializers import supervision_dict
from app.services.floor import Window
from app.services.stats import parse_instant

# How far back `since` may go: the per-agent counts are "today"s, a day and a bit at most. A
# browser's clock may run ahead of the server's: its midnight may be a little in our future.
SINCE_MAX = timedelta(hours=48)
CLOCK_SKEW = timedelta(hours=1)



def floor_window() -> Window:
    only_params(request.args, {"since"})
    now = utcnow()
    raw = request.args.get("since")
    since = parse_instant(raw, "since") if raw is not None else now - timedelta(hours=24)
    if not now - SINCE_MAX <= since <= now + CLOCK_SKEW:
        raise ValidationFailed("since must be within the last 48 hours (the start of today).")
    return Window(since=min(since, now))


@bp.get("/supervisor/floor")
@supervisor_required
def floor():
    response = jsonify(services().floor.snapshot(floor_window()))
    response.headers["Cache-Control"] = PRIVATE_NO_STORE
    return response


@bp.get("/supervisor/events")
@supervisor_required
def floor_events():
    stream = FloorStreamResponse(services(), g.agent, floor_window())
    return event_stream(stream)


@bp.post("/supervise")
@supervisor_required
def supervise():
    body = parse_json(request, {"session_id": ID, "mode": Field(str, max_len=16)})
    grant = services().supervision.start(g.agent, body["session_id"], body["mode"])
    return jsonify(
        supervision=supervision_dict(grant.supervision),
        room_name=grant.room_name,
        identity=grant.identity,
        token=grant.token,
        livekit_url=services().settings.LIVEKIT_WS_URL,
        whisper_to=grant.whisper_to,
    ), 201


@bp.post("/supervise/end")
@supervisor_required
def end_supervision():
    body = parse_json(request, {"session_id": ID})
    return jsonify(supervision=supervision_dict(services().supervision.end(g.agent.agent_id, body["session_id"])))
