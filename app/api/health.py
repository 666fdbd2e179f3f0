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


def _no_store(body: dict, status: int = 200):
    # Probes and checks must see the state now, never a cached answer.
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.get("/health")
def health():
    return _no_store(*_monitor().public())


@bp.get("/health/live")
def health_live():
    # Liveness: the process answers requests. Nothing else is asked, so a database or LiveKit
    # outage never makes an orchestrator restart healthy processes (readiness says that).
    return _no_store({"status": "live"})


@bp.get("/health/ready")
def health_ready():
    return _no_store(*_monitor().ready())


@bp.get("/health/details")
@agent_required
def health_details():
    return _no_store(_monitor().details())
