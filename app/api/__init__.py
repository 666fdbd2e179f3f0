"""The JSON API blueprint (docs/architecture.md §9). Route modules register on this one blueprint."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from app.api import agents, calls, health, notifications, summaries, transfers  # noqa: E402,F401  (routes register on import)
