"""Supervisor statistics: `GET /api/stats` and `GET /api/stats.csv` (app.services.stats)."""
from __future__ import annotations

from flask import Response, jsonify, request

from app.api import bp
from app.api.guards import supervisor_required
from app.current import services
from app.errors import ValidationFailed
from app.services.stats import Period
from app.services.stats_report import csv_filename

QUERY = frozenset({"from", "to"})
# Names of agents and teams: for the supervisor's browser only, never a shared cache.
CACHE_CONTROL = "private, no-store"


def _period(args) -> Period:
    """`?from=&to=`: ISO 8601 with a UTC offset (see app.services.stats for the defaults)."""
    unknown = sorted(set(args) - QUERY)
    if unknown:
        raise ValidationFailed(f"Unknown query parameter(s): {', '.join(unknown)}.")
    return services().stats.period(args.get("from"), args.get("to"))


@bp.get("/stats")
@supervisor_required
def stats():
    response = jsonify(services().stats.report(_period(request.args)))
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


@bp.get("/stats.csv")
@supervisor_required
def stats_csv():
    period = _period(request.args)
    headers = {"Content-Disposition": f'attachment; filename="{csv_filename(period)}"', "Cache-Control": CACHE_CONTROL}
    return Response(services().stats.transfers_csv(period), mimetype="text/csv", headers=headers)
