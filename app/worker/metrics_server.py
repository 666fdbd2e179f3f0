"""The worker's own `GET /metrics` (docs/architecture.md §12), on API_HOST:WORKER_METRICS_PORT.

A worker is not behind gunicorn and has no Flask server, so this is a small WSGI app on the
standard library's server, one thread per request, in daemon threads of the worker process. It
exposes what this process recorded (the tasks it ran: Agent B dialled, LiveKit and Twilio
failures, draft summaries) and not wt_tasks, which the web app's /metrics reads from the database
(one exposer per deployment role, so a sum over instances does not double it). METRICS_TOKEN is
checked as on the web app.
"""
from __future__ import annotations

import json
import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from app.metrics_export import CONTENT_TYPE, render, token_ok

log = logging.getLogger(__name__)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("metrics: " + format, *args)


def metrics_app(token: str):
    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _json(start_response, "404 Not Found", "not_found", "Only GET /metrics is served here.")
        if not token_ok(token, environ.get("HTTP_AUTHORIZATION")):
            return _json(start_response, "401 Unauthorized", "metrics_token_required",
                         "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.", [("WWW-Authenticate", 'Bearer realm="metrics"')])
        body = render(None, all_processes=False)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return [body]

    return app


def _json(start_response, status: str, code: str, message: str, extra: list | None = None):
    # The same error body as the web app's (app.errors), without Flask.
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(extra or [])])
    return [body]


class MetricsServer:
    def __init__(self, host: str, port: int, token: str):
        self._server = make_server(host, port, metrics_app(token), server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.port = self._server.server_port  # the one bound (port 0 in tests: any free one)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-server", daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("worker metrics on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
