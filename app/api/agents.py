"""Login, logout, presence and the agent directory."""
from __future__ import annotations

from flask import g, jsonify, request, session

from app.api import bp
from app.api.guards import agent_required, client_address
from app.api.validation import ID, Field, parse_json
from app.current import services
from app.serializers import agent_dict


@bp.post("/login")
def login():
    body = parse_json(request, {"agent_id": ID, "password": Field(str, max_len=256), "stay_away": Field(bool, required=False)})
    result = services().agents.sign_in(body["agent_id"], body["password"], client_address(), stay_away=bool(body.get("stay_away")))
    # A fresh cookie for a fresh login (no fixation): only its secret travels, the login is a row.
    session.clear()
    session.permanent = True
    session["sid"] = result.cookie_secret
    return jsonify(agent={"id": result.agent.id, "name": result.agent.name}, csrf_token=result.csrf_token)


@bp.post("/logout")
@agent_required
def logout():
    services().agents.logout(g.agent)
    session.clear()
    return jsonify(ok=True)


@bp.get("/me")
@agent_required
def me():
    return jsonify(services().agents.me(g.agent))


@bp.post("/presence")
@agent_required
def presence():
    body = parse_json(request, {"status": Field(str, max_len=16)})
    return jsonify(agent=agent_dict(services().agents.set_presence(g.agent.agent_id, body["status"])))


@bp.get("/agents")
@agent_required
def directory():
    return jsonify(agents=[agent_dict(a) for a in services().agents.all()])
