"""Calls: web customers start them; agents add context, join, leave and end them."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.guards import agent_required, client_address, current_caller, customer_required
from app.api.validation import ID, Field, parse_json
from app.current import services
from app.serializers import call_dict, entry_dict
from app.services.summaries import CONTEXT_TEXT_MAX


def _livekit_url() -> str:
    return services().settings.LIVEKIT_WS_URL


@bp.post("/create-call")
def create_call():
    body = parse_json(request, {"customer_name": Field(str, max_len=120)})
    web = services().calls.create_web_call(body["customer_name"], client_address())
    return (
        jsonify(
            session_id=web.call.id,
            room_name=web.call.room_name,
            token=web.token,
            livekit_url=_livekit_url(),
            customer_key=web.customer_key,
            agent_id=web.call.agent_id,
            status=web.call.status,
        ),
        201,
    )


@bp.get("/calls/<session_id>/status")
@customer_required
def customer_call_status(session_id: str):
    """The web customer's view of their own call (X-Customer-Key): what the page should show."""
    return jsonify(services().calls.customer_status(session_id, g.customer_key))


@bp.post("/add-context")
@agent_required
def add_context():
    body = parse_json(request, {"session_id": ID, "text": Field(str, max_len=CONTEXT_TEXT_MAX)})
    entry = services().calls.add_context(g.agent.agent_id, body["session_id"], body["text"])
    return jsonify(entry=entry_dict(entry)), 201


@bp.post("/token")
def token():
    body = parse_json(request, {"session_id": ID})
    grant = services().calls.room_for(current_caller(), body["session_id"])
    return jsonify(session_id=body["session_id"], room_name=grant.room_name, token=grant.token, role=grant.role, livekit_url=_livekit_url())


@bp.post("/microphone-failed")
@agent_required
def microphone_failed():
    body = parse_json(request, {"session_id": ID, "error": Field(str, max_len=200)})
    return jsonify(services().calls.microphone_failed(g.agent.agent_id, body["session_id"], body["error"]))


@bp.post("/agent-exit-room")
@agent_required
def agent_exit_room():
    body = parse_json(request, {"session_id": ID})
    return jsonify(services().calls.agent_exit(g.agent.agent_id, body["session_id"]))


@bp.post("/end-call")
def end_call():
    body = parse_json(request, {"session_id": ID})
    return jsonify(call=call_dict(services().calls.end_for(current_caller(), body["session_id"])))


@bp.get("/calls")
@agent_required
def list_calls():
    return jsonify(services().calls.list_calls(g.agent.agent_id))


@bp.get("/calls/<session_id>")
@agent_required
def get_call(session_id: str):
    return jsonify(call=services().calls.get_call(g.agent.agent_id, session_id))
