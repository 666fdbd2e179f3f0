"""Who is calling: logged-in agents (session cookie + CSRF header) and web customers (key header;
for their status stream alone, the key cookie `create-call` set: see `set_customer_cookie`).

The decorators put the caller on `flask.g` (`g.agent`, `g.customer_key`) so a view never asks
twice. They establish who is asking (and, for supervisor routes, that the account has that role); whether that caller may touch a given call or
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
# The customer's key for one call, sent by the browser to that call's status stream only.
CUSTOMER_COOKIE = "wt_customer"


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


def supervisor_required(view):
    """A signed-in agent whose account has the supervisor role, as `g.agent`; any other agent is
    refused with 403 `supervisor_only` (after the login and CSRF checks, so a stranger still
    learns nothing but 401)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        auth = require_agent()
        if not auth.is_supervisor:
            raise Forbidden("Only supervisors may do this (flask --app app agents set-role ID supervisor).", code="supervisor_only")
        g.agent = auth
        return view(*args, **kwargs)

    # Marks the route, so a test can find every supervisor route and check it refuses agents.
    wrapper.supervisor_only = True
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


def customer_stream_path(call_id: str) -> str:
    return f"/api/calls/{call_id}/events"


def set_customer_cookie(response, call_id: str, key: str) -> None:
    """The customer key as a cookie for the call's status stream, which an EventSource cannot
    send a header to, and which must not carry the key in its URL (logs, history, Referer).

    HttpOnly (page scripts never read it), SameSite=Strict (no other site's request carries it)
    and scoped to that one stream's path: the browser sends it nowhere else, and no other route
    reads it (everything that changes something takes the X-Customer-Key header, which another
    site cannot set), so it is no CSRF vector. Secure with SESSION_COOKIE_SECURE; it lasts as long
    as an agent's session would."""
    settings = services().settings
    response.set_cookie(
        CUSTOMER_COOKIE, key, max_age=settings.SESSION_LIFETIME_S, path=customer_stream_path(call_id),
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict",
    )


def customer_cookie() -> str:
    """The key cookie of a status stream; 401 when the browser sent none."""
    key = request.cookies.get(CUSTOMER_COOKIE)
    if not key:
        raise NotAuthenticated(
            "No customer cookie for this call: the status stream is for the browser that started it (POST /api/create-call).",
            code="customer_cookie_missing",
        )
    return key


def client_address() -> str:
    # With TRUST_PROXY, ProxyFix has already replaced remote_addr with the forwarded client.
    return request.remote_addr or "unknown"
