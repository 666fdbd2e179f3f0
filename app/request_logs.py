"""Each request's log context (docs/architecture.md §13): its id, and the ids it is about.

The request id is the caller's `X-Request-Id` when it is a sane one (a load balancer's or a
client's, `app.logs.valid_request_id`), else a new one; the response echoes it in `X-Request-Id`.
What the request is about joins the context as soon as it is known: ids in the URL here
(`<session_id>` is a call, `<transfer_id>` a transfer), the signed-in agent in `app.api.guards`,
the ids of a JSON body in `app.api.validation`, Twilio's CallSid in `app.twilio_webhooks`, the call
behind a CallSid or a LiveKit room in the services that look it up.
"""
from __future__ import annotations

from flask import Flask, g, request

from app import logs

REQUEST_ID_HEADER = "X-Request-Id"
# URL variables that name what a request is about, and the context field each one fills.
_VIEW_ARGS = {"session_id": "call_id", "transfer_id": "transfer_id"}


def install(app: Flask) -> None:
    @app.before_request
    def _open_log_scope():
        rid = logs.valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or logs.new_request_id()
        about = {field: (request.view_args or {}).get(arg) for arg, field in _VIEW_ARGS.items()}
        g.wt_log_token = logs.enter_fresh(request_id=rid, **{k: v for k, v in about.items() if isinstance(v, str)})
        g.wt_request_id = rid

    @app.after_request
    def _echo_request_id(response):
        rid = g.get("wt_request_id")
        if rid:
            response.headers[REQUEST_ID_HEADER] = rid
        return response

    @app.teardown_request
    def _close_log_scope(_exc):
        token = g.pop("wt_log_token", None)
        if token is None:
            return
        # gunicorn writes the access line after this: it finds the context in the environ.
        request.environ[logs.ENVIRON_KEY] = logs.current()
        logs.leave(token)
