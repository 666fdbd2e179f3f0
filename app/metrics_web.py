"""`GET /metrics` on the web app, and the timing of the webhook blueprints (docs/architecture.md §12).

The route is outside `/api` (scrapers expect `/metrics`) and answers even with the database down:
only the task counts need it, and they are left out then. It does not start the event dispatcher
(`skips_dispatcher`): a scrape needs no events, and with the database down starting it would make
every scrape wait on a connect first.
"""
from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from app.current import services
from app.errors import MetricsTokenRequired
from app.metrics import WEBHOOK_SECONDS
from app.metrics_export import CONTENT_TYPE, render, token_ok

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    svc = services()
    if not token_ok(svc.settings.METRICS_TOKEN, request.headers.get("Authorization")):
        raise MetricsTokenRequired("Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.")
    return Response(render(svc.db, all_processes=True), mimetype=None, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


metrics.skips_dispatcher = True  # read by create_app's _start_dispatcher


def time_webhooks(blueprint: Blueprint) -> None:
    """Observe wt_webhook_seconds{route=<endpoint>} for every request `blueprint` answers, whatever
    the answer (an apology, a 403, a 503 are answers Twilio waited for too)."""

    @blueprint.before_request
    def _start():
        g.wt_webhook_started = time.perf_counter()

    @blueprint.teardown_request
    def _observe(_exc):
        started = g.pop("wt_webhook_started", None)
        if started is not None and request.endpoint:
            WEBHOOK_SECONDS.labels(request.endpoint).observe(time.perf_counter() - started)
