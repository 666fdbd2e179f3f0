"""Review and edit the summary before Agent B sees or hears it (Agent A)."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.guards import agent_required
from app.api.validation import Field, parse_json
from app.current import services
from app.errors import ValidationFailed
from app.serializers import summary_dict
from app.summaries.base import TEXT_MAX_CHARS


@bp.get("/calls/<session_id>/summary")
@agent_required
def get_summary(session_id: str):
    return jsonify(services().calls.summary(g.agent.agent_id, session_id))


@bp.put("/calls/<session_id>/summary")
@agent_required
def edit_summary(session_id: str):
    body = parse_json(request, {"text": Field(str, required=False, max_len=TEXT_MAX_CHARS), "structured": Field(dict, required=False)})
    if (body["text"] is None) == (body["structured"] is None):
        raise ValidationFailed("Give exactly one of text or structured.")
    row = services().summaries.edit(g.agent.agent_id, session_id, text=body["text"], structured=body["structured"])
    return jsonify(summary=summary_dict(row))
