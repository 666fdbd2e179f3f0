"""Review and edit the summary before Agent B sees or hears it (Agent A)."""
from __future__ import annotations

from flask import jsonify, request

from app.api import bp
from app.api.guards import agent_required, require_agent, services
from app.api.validation import Field, parse_json
from app.errors import Forbidden, ValidationFailed
from app.repo import load_call
from app.serializers import summary_dict
from app.summaries.base import TEXT_MAX_CHARS


@bp.get("/calls/<session_id>/summary")
@agent_required
def get_summary(session_id: str):
    svc = services()
    agent_id = require_agent().agent_id
    with svc.db.reading() as s:
        call = load_call(s, session_id)
        if not svc.calls.can_view(s, agent_id, call):
            raise Forbidden("You are not part of this call.")
        return jsonify(summary=svc.summaries.current_dict(s, call.id), history=svc.summaries.history(s, call.id))


@bp.put("/calls/<session_id>/summary")
@agent_required
def edit_summary(session_id: str):
    body = parse_json(request, {"text": Field(str, required=False, max_len=TEXT_MAX_CHARS), "structured": Field(dict, required=False)})
    if (body["text"] is None) == (body["structured"] is None):
        raise ValidationFailed("Give exactly one of text or structured.")
    row = services().summaries.edit(require_agent().agent_id, session_id, text=body["text"], structured=body["structured"])
    return jsonify(summary=summary_dict(row))
