"""Health: `/api/health` for anyone (terse, cheap), `/api/health/live` and `/api/health/ready`
for load balancers and orchestrators, `/api/health/details` for signed-in agents.

Two routes rather than one whose answer depends on the cookie: load balancers and uptime checks
get the same small body whoever asks, nothing cached or logged on the way can carry the details,
and an agent's check is plainly an authenticated request (401 without a session).
See app.services.health for what each part costs.
"""
from __future__ import annotations

from flask import current_app, jsonify

from app.api import bp
from app.api.guards import agent_required
from app.current import services
from app.services.health import HealthMonitor


def _monitor() -> HealthMonitor:
    # One per app (its caches are per process); made on first use so nothing else needs wiring.
    monitor = current_app.extensions.get("wt_health")
    if monitor is None:
        monitor = current_app.extensions.setdefault("wt_health", HealthMonitor(services()))
    return monitor


@bp.get("/health")
def health():
    body, status = _monitor().public()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.get("/health/live")
def health_live():
    # Liveness: the process answers requests. Nothing else is asked, so a database or LiveKit
    # outage never makes an orchestrator restart healthy processes (readiness says that).
    response = jsonify({"status": "live"})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/health/ready")
def health_ready():
    body, status = _monitor().ready()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.get("/health/details")
@agent_required
def health_details():
    response = jsonify(_monitor().details())
    response.headers["Cache-Control"] = "no-store"
    return response
