"""The teams a transfer can be addressed to, with how many members are free now."""
from __future__ import annotations

from flask import jsonify

from app.api import bp
from app.api.guards import agent_required
from app.current import services


@bp.get("/teams")
@agent_required
def teams():
    return jsonify(teams=services().teams.directory())
