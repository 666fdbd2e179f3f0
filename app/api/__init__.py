"""The JSON API blueprint (docs/architecture.md §9). Route modules register on this one blueprint."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _refuse_unstorable_url_text():
    from flask import request

    from app.api.validation import check_request_text

    check_request_text(request.path, request.args)


from app.api import agents, calls, health, notifications, openapi, stats, summaries, supervision, teams, transfers  # noqa: E402,F401  (routes register on import)
