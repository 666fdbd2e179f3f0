"""Who is calling: logged-in agents (session cookie + CSRF header) and web customers (key header).

The decorators put the caller on `flask.g` (`g.agent`, `g.customer_key`) so a view never asks
twice. They only establish who is asking; whether that caller may touch a given call or
transfer is the service's decision (app.services).
"""
from __future__ import annotations

from functools import wraps

from flask import g, request, session

from app import logs
from app.current import services
from app.errors import Forbidden, NotAuthenticated
from app.services.agents import AuthContext
from app.services.calls import Caller

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CUSTOMER_KEY_HEADER = "X-Customer-Key"
CSRF_HEADER = "X-CSRF-Token"


def current_agent() -> AuthContext | None:
    """The signed-in agent, if any (pages that serve both kinds of visitor ask this)."""
    if "auth" not in g:
        g.auth = services().agents.authenticate(session.get("sid"))
        if g.auth is not None:
            logs.bind(agent_id=g.auth.agent_id)
    return g.auth


def require_agent() -> AuthContext:
    auth = current_agent()
    if auth is None:
        raise NotAuthenticated("Log in first (POST /api/login).")
    if request.method not in SAFE_METHODS and not auth.csrf_ok(request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"Missing or wrong {CSRF_HEADER} header.", code="csrf_failed")
    return auth


def agent_required(view):
    """A signed-in agent (with the CSRF header on writes), as `g.agent`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.agent = require_agent()
        return view(*args, **kwargs)

    return wrapper


def customer_required(view):
    """A web customer's key, as `g.customer_key` (None when the header is missing). It is not
    refused here: only the service knows the call it must match, and an unknown call is a 404
    whether or not a key came with it."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.customer_key = customer_key()
        return view(*args, **kwargs)

    return wrapper


def current_caller() -> Caller:
    """For routes both a web customer and an agent use (token, end-call): the customer when the
    key header is present, else the signed-in agent. Called after the body is parsed, so a
    malformed body is reported before a missing login, as on these routes it always was."""
    key = customer_key()
    if key is not None:
        g.customer_key = key
        return Caller(customer_key=key)
    g.agent = require_agent()
    return Caller(agent=g.agent)


def customer_key() -> str | None:
    return request.headers.get(CUSTOMER_KEY_HEADER)


def client_address() -> str:
    # With TRUST_PROXY, ProxyFix has already replaced remote_addr with the forwarded client.
    return request.remote_addr or "unknown"
