"""Typed errors, and the one place that turns them into HTTP responses.

Services raise these; blueprints never build error responses by hand. Every error leaves the app
as `{"error": {"code": ..., "message": ...}}` with a meaningful status. Unknown exceptions become
a 500 with a generic message: the stack trace goes to the log, never to the client.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The environment describes an app that cannot run."""


class AppError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(AppError):
    status, code = 400, "bad_request"


class ValidationFailed(AppError):
    status, code = 422, "validation_error"


class NotAuthenticated(AppError):
    status, code = 401, "not_authenticated"


class InvalidWebhook(NotAuthenticated):
    """A LiveKit webhook whose signature, token or body hash does not check out."""

    code = "invalid_webhook_signature"


class MetricsTokenRequired(NotAuthenticated):
    """`GET /metrics` without `Authorization: Bearer <METRICS_TOKEN>` (or with another token)."""

    code = "metrics_token_required"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    """The request is valid but the call or transfer is not in a state that allows it."""

    status, code = 409, "invalid_state"


class RateLimited(AppError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status, code = 503, "service_unavailable"


class LiveKitUnavailable(ServiceUnavailable):
    code = "livekit_unavailable"


class LiveKitFailed(ServiceUnavailable):
    """LiveKit answered, but with an error we cannot work around."""

    code = "livekit_error"


class StreamsFull(ServiceUnavailable):
    """This process has no thread to spare for another event stream; the dashboard polls."""

    code = "streams_full"
    retry_after = 30


class TelephonyNotConfigured(ServiceUnavailable):
    code = "telephony_not_configured"


class DatabaseUnavailable(ServiceUnavailable):
    code = "db_unavailable"


class TwilioError(AppError):
    """Twilio refused a REST request. Twilio's own error code (e.g. 21211) and message are kept,
    because they are what an operator looks up; they also travel to the client as `twilio_code`."""

    status, code = 502, "twilio_error"

    def __init__(self, message: str, *, twilio_code: int | None = None, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code, status=status)
        self.twilio_code = twilio_code

    def to_dict(self) -> dict:
        body = super().to_dict()
        body["error"]["twilio_code"] = self.twilio_code
        return body


class TwilioUnavailable(TwilioError):
    """Twilio could not be reached, timed out, or failed on its side (5xx): worth retrying."""

    status, code = 503, "twilio_unavailable"


def register_error_handlers(app) -> None:
    """Map every failure to a JSON body; imported lazily so this module stays Flask-free."""
    from flask import jsonify
    from sqlalchemy.exc import DataError, DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as SQLTimeoutError
    from werkzeug.exceptions import HTTPException, MethodNotAllowed

    from app.metrics import external_error

    def render(err: AppError):
        response = jsonify(err.to_dict())
        response.status_code = err.status
        if isinstance(err, (RateLimited, StreamsFull)):
            response.headers["Retry-After"] = str(err.retry_after)
        if isinstance(err, MetricsTokenRequired):
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'  # RFC 6750 §3
        return response

    @app.errorhandler(AppError)
    def _app_error(err: AppError):
        return render(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request"}
        code = codes.get(err.code or 500, "http_error")
        message = {
            404: "No such route.",
            405: "This route does not accept that HTTP method.",
            413: "The request body is too large.",
        }.get(err.code or 500, err.description or "The request could not be handled.")
        response = render(AppError(message, code=code, status=err.code or 500))
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            response.headers["Allow"] = ", ".join(err.valid_methods)  # RFC 9110 §15.5.6
        return response

    @app.errorhandler(DataError)
    def _unstorable(err: DataError):
        # A value the database refuses (validation should have caught it): the client's input,
        # so a 422 that names no internals, and a warning for us to close the gap.
        log.warning("database refused a value: %s", err.orig if hasattr(err, "orig") else err)
        return render(ValidationFailed("The request contains a value that cannot be stored.", code="invalid_input"))

    @app.errorhandler(OperationalError)
    def _db_down(err: OperationalError, code: str = "unavailable"):
        log.error("database error: %s", err.orig if hasattr(err, "orig") else err)
        external_error("database", code)
        return render(DatabaseUnavailable("The database is unavailable; nothing was changed. Try again shortly."))

    @app.errorhandler(DBAPIError)
    def _db_failed(err: DBAPIError):
        # A connection that died mid-statement can surface as another DBAPI class than
        # OperationalError (psycopg raises InterfaceError or ProgrammingError on a closed
        # socket); SQLAlchemy marks those as invalidated. Anything else is a real bug: a 500.
        if err.connection_invalidated:
            return _db_down(err, "connection_lost")
        return _unexpected(err)

    @app.errorhandler(SQLTimeoutError)
    def _pool_exhausted(err: SQLTimeoutError):
        # No pooled connection became free within DB_TIMEOUT_S: every one is busy on a slow database.
        return _db_down(err, "pool_timeout")

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return render(AppError("Something went wrong on our side; nothing was changed. Try again."))
