"""Supervisor statistics: `GET /api/stats` and `GET /api/stats.csv` (app.services.stats)."""
from __future__ import annotations

from flask import Response, jsonify, request

from app.api import bp
from app.api.guards import supervisor_required
from app.api.responses import PRIVATE_NO_STORE
from app.api.validation import only_params
from app.current import services
from app.services.stats import Period
from app.services.stats_report import csv_filename

QUERY = frozenset({"from", "to"})


def _period(args) -> Period:
    """`?from=&to=`: ISO 8601 with a UTC offset (see app.services.stats for the defaults)."""
    only_params(args, QUERY)
    return services().stats.period(args.get("from"), args.get("to"))


@bp.get("/stats")
@supervisor_required
def stats():
    response = jsonify(services().stats.report(_period(request.args)))
    response.headers["Cache-Control"] = PRIVATE_NO_STORE
    return response


@bp.get("/stats.csv")
@supervisor_required
def stats_csv():
    period = _period(request.args)
    headers = {"Content-Disposition": f'attachment; filename="{csv_filename(period)}"', "Cache-Control": PRIVATE_NO_STORE}
    return Response(services().stats.transfers_csv(period), mimetype="text/csv", headers=headers)
