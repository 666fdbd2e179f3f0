"""Who is calling: logged-in agents (session cookie + CSRF header) and web customers (key header)."""
from __future__ import annotations

from functools import wraps

from flask import current_app, g, request, session

from app.errors import Forbidden, NotAuthenticated
from app.services import Services
from app.services.agents import AuthContext

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CUSTOMER_KEY_HEADER = "X-Customer-Key"
CSRF_HEADER = "X-CSRF-Token"


def services() -> Services:
    return current_app.extensions["wt"]


def current_agent() -> AuthContext | None:
    if "auth" not in g:
        g.auth = services().agents.authenticate(session.get("sid"))
    return g.auth


def require_agent() -> AuthContext:
    auth = current_agent()
    if auth is None:
        raise NotAuthenticated("Log in first (POST /api/login).")
    if request.method not in SAFE_METHODS and not auth.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"Missing or wrong {CSRF_HEADER} header.", code="csrf_failed")
    return auth


def agent_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        require_agent()
        return view(*args, **kwargs)

    return wrapper


def customer_key() -> str | None:
    return request.headers.get(CUSTOMER_KEY_HEADER)


def client_address() -> str:
    # With TRUST_PROXY, ProxyFix has already replaced remote_addr with the forwarded client.
    return request.remote_addr or "unknown"
