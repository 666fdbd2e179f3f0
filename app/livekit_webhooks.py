"""LiveKit's webhook (docs/architecture.md §9): verify, then hand the event to `app.services.livekit_events`.

livekit-server POSTs `application/webhook+json` with the raw JWT (no `Bearer`) in Authorization;
the token's `sha256` claim covers the exact body, so the body is verified as received, before
it is parsed. A bad signature is a 401 (livekit-server does not retry 4xx); a database outage
is a 503, which it does retry, and the event id makes that retry safe.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from app import logs
from app.current import services
from app.metrics_web import time_webhooks
from app.protocol import parse_identity, parse_room

bp = Blueprint("livekit", __name__, url_prefix="/livekit")
time_webhooks(bp)


@bp.post("/webhook")
def webhook():
    svc = services()
    event = svc.livekit.verify_webhook(request.get_data(as_text=True), request.headers.get("Authorization", ""))
    room, who = parse_room(event.room.name), parse_identity(event.participant.identity)
    logs.bind(call_id=room.call_id if room else None, agent_id=who[1] if who and who[0] == "agent" else None)
    return jsonify(event=event.event, id=event.id, outcome=svc.livekit_events.handle(event))
