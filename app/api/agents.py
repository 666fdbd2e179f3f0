"""Login, logout, presence and the agent directory."""
from __future__ import annotations

from flask import jsonify, request, session

from app.api import bp
from app.api.guards import agent_required, client_address, current_agent, require_agent, services
from app.api.validation import ID, Field, parse_json
from app.config import parse_rate
from app.errors import NotAuthenticated
from app.serializers import agent_dict


@bp.post("/login")
def login():
    body = parse_json(request, {"agent_id": ID, "password": Field(str, max_len=256)})
    svc = services()
    count, window = parse_rate(svc.settings.LOGIN_RATE_LIMIT)
    svc.limiter.hit(f"login:{client_address()}", count, window, "sign-in attempts")
    failures, fail_window = parse_rate(svc.settings.LOGIN_AGENT_RATE_LIMIT)
    fail_key = f"login-failed:{body['agent_id']}"
    svc.limiter.check(fail_key, failures, fail_window, "failed sign-ins", "for this agent id")
    try:
        result = svc.agents.login(body["agent_id"], body["password"])
    except NotAuthenticated:
        svc.limiter.add(fail_key, fail_window, failures)
        raise
    session.clear()
    session.permanent = True
    session["sid"] = result.cookie_secret
    svc.drain_queue()
    return jsonify(agent={"id": result.agent.id, "name": result.agent.name}, csrf_token=result.csrf_token)


@bp.post("/logout")
@agent_required
def logout():
    services().agents.logout(current_agent())
    session.clear()
    return jsonify(ok=True)


@bp.get("/me")
@agent_required
def me():
    auth = require_agent()
    agents = services().agents
    agent = agents.get(auth.agent_id)
    return jsonify(
        agent=dict(agent_dict(agent), active_call_id=agent.active_call_id),
        csrf_token=auth.csrf_token,
        # Where a restored dashboard picks up: start the event stream/poll from here, and show
        # any transfer already ringing for this agent.
        last_event_id=agents.newest_event_id(),
        pending_transfers=agents.pending_transfers(auth.agent_id),
    )


@bp.post("/presence")
@agent_required
def presence():
    body = parse_json(request, {"status": Field(str, max_len=16)})
    svc = services()
    agent = svc.agents.set_presence(require_agent().agent_id, body["status"])
    if agent.presence == "available":
        svc.drain_queue()
    return jsonify(agent=agent_dict(agent))


@bp.get("/agents")
@agent_required
def directory():
    return jsonify(agents=[agent_dict(a) for a in services().agents.all()])
