"""Supervisors in live calls: monitor, whisper, barge (app.services.supervision)."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.guards import supervisor_required
from app.api.validation import ID, Field, parse_json
from app.current import services
from app.serializers import supervision_dict


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
