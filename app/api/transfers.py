"""Transfers: Agent A starts, completes or cancels; Agent B accepts or declines."""
from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.guards import agent_required
from app.api.validation import ID, Field, parse_json
from app.current import services


def _livekit_url() -> str:
    return services().settings.LIVEKIT_WS_URL


@bp.post("/initiate-transfer")
@agent_required
def initiate_transfer():
    body = parse_json(
        request,
        {
            "session_id": ID,
            "to_agent_id": Field(str, required=False, max_len=64),
            "to_phone": Field(str, required=False, max_len=20),
            "to_team": Field(str, required=False, max_len=64),
        },
    )
    transfer, token = services().transfers.initiate(
        g.agent.agent_id, g.agent.agent_name, body["session_id"],
        to_agent_id=body["to_agent_id"], to_phone=body["to_phone"], to_team=body["to_team"],
    )
    return jsonify(transfer=transfer, token=token, livekit_url=_livekit_url()), 201


@bp.post("/accept-transfer")
@agent_required
def accept_transfer():
    body = parse_json(request, {"transfer_id": ID})
    transfer, token = services().transfers.accept(g.agent.agent_id, g.agent.agent_name, body["transfer_id"])
    return jsonify(transfer=transfer, token=token, livekit_url=_livekit_url())


@bp.post("/decline-transfer")
@agent_required
def decline_transfer():
    body = parse_json(request, {"transfer_id": ID, "reason": Field(str, required=False, max_len=200)})
    return jsonify(transfer=services().transfers.decline(g.agent.agent_id, body["transfer_id"], body["reason"]))


@bp.post("/complete-transfer")
@agent_required
def complete_transfer():
    body = parse_json(request, {"transfer_id": ID})
    return jsonify(transfer=services().transfers.complete(g.agent.agent_id, body["transfer_id"]))


@bp.post("/cancel-transfer")
@agent_required
def cancel_transfer():
    body = parse_json(request, {"transfer_id": ID})
    return jsonify(transfer=services().transfers.cancel(g.agent.agent_id, body["transfer_id"]))
