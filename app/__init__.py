"""Warm Transfer: a Flask app that answers Twilio, drives LiveKit and hands callers between agents.

`create_app()` is the only way to get an app: gunicorn calls it (`app:create_app()`), the CLI
calls it (`flask --app app ...`), and every test builds a fresh one.
"""
from __future__ import annotations

import logging
import sys
from datetime import timedelta

from flask import Flask, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from app import logs, request_logs
from app.config import PROJECT_ROOT, load_dotenv_for_development, load_settings
from app.current import install
from app.db_deadline import end_budget, start_budget
from app.errors import ConfigError, register_error_handlers

MAX_BODY_BYTES = 64 * 1024


def create_app(test_config: dict | None = None, *, services=None) -> Flask:
    """Build the app. `test_config` replaces the environment entirely (tests are hermetic);
    `services` lets tests inject a pre-built service container with doubles wired in."""
    # `flask --app app check-config` must get as far as its command to list what is wrong, so for
    # it (only) a configuration that would be refused is loaded anyway.
    checking = test_config is None and "check-config" in sys.argv[1:]
    if test_config is None:
        load_dotenv_for_development()
        try:
            settings = load_settings(strict=not checking)
        except ConfigError as err:
            # A process started with a bad environment stops with the list, not a traceback.
            raise SystemExit(f"{err}\n(`flask --app app check-config` lists these problems.)") from None
    else:
        settings = load_settings(environ={}, overrides=test_config)

    # Logs: one handler, json or text, the request's context on every line (docs/architecture.md §13).
    logs.configure(settings.log_format, settings.log_level, secrets=settings.secrets)
    app = Flask(__name__, static_folder=str(PROJECT_ROOT / "static"), static_url_path="/static")
    request_logs.install(app)  # first, so everything a request logs carries its id
    app.config.from_mapping(
        settings.as_flask_config(),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_NAME="wt_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.SESSION_LIFETIME_S),
        JSON_SORT_KEYS=False,
    )
    if settings.TRUST_PROXY:
        hops = settings.TRUST_PROXY
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)

    if services is None:
        from app.services import build_services

        try:
            services = build_services(settings)
        except ConfigError as err:
            if not checking:
                raise
            app.extensions["wt_config_error"] = str(err)
    install(app, services)

    register_error_handlers(app)
    from app.api import bp as api_bp

    app.register_blueprint(api_bp)
    from app.twilio_webhooks import bp as twilio_bp

    app.register_blueprint(twilio_bp)
    from app.pages import bp as pages_bp

    app.register_blueprint(pages_bp)
    from app.livekit_webhooks import bp as livekit_bp

    app.register_blueprint(livekit_bp)
    from app.metrics_web import bp as metrics_bp

    app.register_blueprint(metrics_bp)

    if services is not None:
        budget_s = services.settings.DB_REQUEST_BUDGET_S

        @app.before_request
        def _db_budget():
            # All of this request's database exchanges share one deadline (app.db_deadline).
            g.wt_db_budget = start_budget(budget_s)

        @app.teardown_request
        def _db_budget_end(_exc):
            token = g.pop("wt_db_budget", None)
            if token is not None:
                end_budget(token)

    @app.before_request
    def _start_dispatcher():
        if services is None or getattr(app.view_functions.get(request.endpoint), "skips_dispatcher", False):
            return
        # Threads do not survive gunicorn's fork, so each worker starts its own on first use.
        # With the database down it cannot start; the request goes on (health must still
        # answer) and the next request tries again.
        try:
            services.dispatcher.ensure_started()
        except SQLAlchemyError as err:
            logging.getLogger(__name__).warning("event dispatcher not started: %s", err)

    from app.cli import register_cli

    register_cli(app)
    return app
