"""Calls: web customers start them; agents add context, join, leave and end them."""
from __future__ import annotations

import secrets

from flask import jsonify, request

from app.api import bp
from app.api.guards import agent_required, client_address, customer_key, require_agent, services
from app.api.validation import ID, Field, parse_json
from app.config import parse_rate
from app.serializers import call_dict, entry_dict
from app.services import call_list
from app.services.summaries import CONTEXT_TEXT_MAX


def _livekit_url() -> str:
    return services().settings.LIVEKIT_WS_URL


@bp.post("/create-call")
def create_call():
    body = parse_json(request, {"customer_name": Field(str, max_len=120)})
    svc = services()
    count, window = parse_rate(svc.settings.CREATE_CALL_RATE_LIMIT)
    svc.limiter.hit(f"create-call:{client_address()}", count, window, "new calls")
    key = secrets.token_urlsafe(24)
    call, token = svc.calls.create_web_call(body["customer_name"], key)
    return (
        jsonify(
            session_id=call.id,
            room_name=call.room_name,
            token=token,
            livekit_url=_livekit_url(),
            customer_key=key,
            agent_id=call.agent_id,
            status=call.status,
        ),
        201,
    )


@bp.get("/calls/<session_id>/status")
def customer_call_status(session_id: str):
    """The web customer's view of their own call (X-Customer-Key): what the page should show."""
    svc = services()
    call = svc.calls.customer_call(session_id, customer_key())
    agent = svc.agents.get(call.agent_id) if call.agent_id else None
    return jsonify(
        session_id=call.id,
        status=call.status,
        agent_name=agent.name if agent else None,
        on_hold=call.status == "on_hold",
        end_reason=call.end_reason,
    )


@bp.post("/add-context")
@agent_required
def add_context():
    body = parse_json(request, {"session_id": ID, "text": Field(str, max_len=CONTEXT_TEXT_MAX)})
    entry = services().calls.add_context(require_agent().agent_id, body["session_id"], body["text"])
    return jsonify(entry=entry_dict(entry)), 201


@bp.post("/token")
def token():
    body = parse_json(request, {"session_id": ID})
    svc = services()
    if customer_key() is not None:
        grant = svc.calls.customer_room(svc.calls.customer_call(body["session_id"], customer_key()))
    else:
        auth = require_agent()
        grant = svc.calls.agent_room(auth.agent_id, auth.agent_name, body["session_id"])
    return jsonify(session_id=body["session_id"], room_name=grant.room_name, token=grant.token, role=grant.role, livekit_url=_livekit_url())


@bp.post("/microphone-failed")
@agent_required
def microphone_failed():
    body = parse_json(request, {"session_id": ID, "error": Field(str, max_len=200)})
    return jsonify(services().calls.microphone_failed(require_agent().agent_id, body["session_id"], body["error"]))


@bp.post("/agent-exit-room")
@agent_required
def agent_exit_room():
    body = parse_json(request, {"session_id": ID})
    return jsonify(services().calls.agent_exit(require_agent().agent_id, body["session_id"]))


@bp.post("/end-call")
def end_call():
    body = parse_json(request, {"session_id": ID})
    svc = services()
    if customer_key() is not None:
        call = svc.calls.customer_call(body["session_id"], customer_key())
        ended = svc.calls.end_call(call.id, by_agent=None, reason="customer_hung_up")
    else:
        ended = svc.calls.end_call(body["session_id"], by_agent=require_agent().agent_id, reason="agent_ended")
    return jsonify(call=call_dict(ended))


@bp.get("/calls")
@agent_required
def list_calls():
    # Only calls the agent took part in (app.services.call_list says which, and why).
    return jsonify(call_list.list_calls(services().db, require_agent().agent_id))


@bp.get("/calls/<session_id>")
@agent_required
def get_call(session_id: str):
    return jsonify(call=services().calls.get_call(require_agent().agent_id, session_id))
