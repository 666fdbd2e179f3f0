"""Calls: web customers start them; agents add context, join, leave and end them."""
from __future__ import annotations

from flask import Response, g, jsonify, request

from app.api import bp
from app.api.guards import agent_required, client_address, current_caller, customer_cookie, customer_required, set_customer_cookie
from app.api.responses import PRIVATE_NO_STORE, event_stream
from app.api.validation import ID, Field, event_id, only_params, parse_json
from app.current import services
from app.customer_sse import CustomerStreamResponse
from app.errors import ValidationFailed
from app.serializers import call_dict, entry_dict
from app.services.call_list import LIST_LIMIT, PAGE_MAX, STATUS_FILTERS, Page
from app.services.summaries import CONTEXT_TEXT_MAX


def _livekit_url() -> str:
    return services().settings.LIVEKIT_WS_URL


@bp.post("/create-call")
def create_call():
    body = parse_json(request, {"customer_name": Field(str, max_len=120)})
    web = services().calls.create_web_call(body["customer_name"], client_address())
    response = jsonify(
        session_id=web.call.id,
        room_name=web.call.room_name,
        token=web.token,
        livekit_url=_livekit_url(),
        customer_key=web.customer_key,
        agent_id=web.call.agent_id,
        status=web.call.status,
    )
    set_customer_cookie(response, web.call.id, web.customer_key)
    return response, 201


@bp.get("/calls/<session_id>/status")
@customer_required
def customer_call_status(session_id: str):
    """The web customer's view of their own call (X-Customer-Key): what the page should show."""
    return jsonify(services().calls.customer_status(session_id, g.customer_key))


@bp.get("/calls/<session_id>/events")
def customer_call_events(session_id: str):
    """The web customer's status as Server-Sent Events (app.customer_sse), authenticated by the
    key cookie create-call set for this call, since an EventSource sends no headers."""
    key = customer_cookie()
    # Validated although a status stream replays nothing: the current status is all that was missed.
    event_id(request.headers.get("Last-Event-ID"), "Last-Event-ID")
    call = services().calls.customer_call(session_id, key)
    return event_stream(CustomerStreamResponse(services(), call.id))


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
    return jsonify(services().calls.list_calls(g.agent.agent_id, _calls_page(request.args)))


def _calls_page(args) -> Page:
    """`?mine=1&status=&limit=&before=`: which page of the agent's calls. An agent only ever sees
    calls they took part in, so `mine` can only be 1 (accepted so that links say what they mean)."""
    only_params(args, {"mine", "status", "limit", "before"})
    if args.get("mine", "1") != "1":
        raise ValidationFailed("mine must be 1: an agent's list holds only the calls they took part in.")
    status = args.get("status") or None
    if status is not None and status not in STATUS_FILTERS:
        raise ValidationFailed(f"status must be one of: {', '.join(sorted(STATUS_FILTERS))}.")
    raw_limit = args.get("limit") or str(LIST_LIMIT)
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= PAGE_MAX:
        raise ValidationFailed(f"limit must be an integer from 1 to {PAGE_MAX}.")
    before = args.get("before") or None
    if before is not None and len(before) > ID.max_len:
        raise ValidationFailed("before must be a call id (the previous page's next_before).")
    return Page(status=status, limit=int(raw_limit), before=before)


@bp.get("/calls/<session_id>")
@agent_required
def get_call(session_id: str):
    return jsonify(call=services().calls.get_call(g.agent.agent_id, session_id, supervisor=g.agent.is_supervisor))


# Private to the agent's browser: a shared cache must never keep a call's audio, nor the browser's
# disk once the page is gone.


@bp.get("/calls/<session_id>/recording")
@agent_required
def call_recording(session_id: str):
    """The call's recording, streamed from Twilio through this process (app.services.recordings)."""
    media = services().recordings.media(g.agent.agent_id, session_id)
    headers = {"Cache-Control": PRIVATE_NO_STORE, "Content-Disposition": "inline", "X-Content-Type-Options": "nosniff"}
    if media.length is not None:
        headers["Content-Length"] = str(media.length)
    response = Response(media.chunks(), mimetype=media.content_type, headers=headers, direct_passthrough=True)
    response.call_on_close(media.close)  # also when the browser goes away mid-stream
    return response
