"""Structured logs (docs/architecture.md §13): one format for every process, the context of what a
line is about, and a last-line guard against secrets and personal data.

- **Formats.** `json` (production's default): one JSON object per line, `ts` (ISO-8601 UTC),
  `level`, `logger`, `msg`, `pid`, the context fields, `exc` (a traceback, as one string). `text`
  (everywhere else): the classic `2024-05-01 12:00:00,123 INFO name: message` followed by the
  context as `key=value`, for people reading a terminal.
- **Context.** `log_context(call_id=..., ...)` (a `contextvars` scope) and `bind(...)` (add to
  the current scope); `ContextFilter` copies the scope onto every record, so a line logged deep in
  a service carries the request id, the agent, the call, the transfer and Twilio's CallSid
  without any call site passing them. Flask requests open a scope in `app.request_logs`, worker
  tasks in `app.worker.runner`.
- **Guard.** `scrub` runs on every string a formatter writes: card numbers and national ids
  (`app.summaries.redact`, the redaction context gets before it is stored), phone numbers
  (all but the last four digits), e-mail addresses, bearer tokens and JWTs, `key=value` pairs
  whose key names a password, token, secret, cookie or authorization, and the configured secrets
  themselves. It is a last line of defence: the app does not log context, summaries or tokens
  in the first place.

Pure: no Flask, no database. `configure` is idempotent (tests build hundreds of apps; the
handler is replaced, never stacked), and gunicorn's master process configures its own loggers
with `gunicorn_logconfig` before any app exists (gunicorn.conf.py).
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from app.summaries.redact import redact

# The context fields, in the order lines show them. Anything else passed to log_context/bind is
# refused: a field name is a promise about what its value is (an id, never free text).
CONTEXT_FIELDS = ("request_id", "agent_id", "call_id", "transfer_id", "call_sid", "task_id", "task_kind")
# The access log's own fields (gunicorn's access lines, see AccessFilter).
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
# An id longer than this is cut: context values come from requests, so they are bounded here too.
MAX_FIELD_CHARS = 80
# Libraries whose INFO lines are request dumps: the Twilio library logs every REST request's URL,
# headers and (for a GET) query, which names phone numbers when it lists calls.
QUIETER = {"twilio.http_client": "WARNING"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# -- context --------------------------------------------------------------------------------
_scope: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("wt_log_context", default=None)


def _clean(fields: Mapping[str, object]) -> dict[str, str]:
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    return {k: str(v)[:MAX_FIELD_CHARS] for k, v in fields.items() if v is not None and v != ""}


def enter(**fields: object) -> contextvars.Token:
    """Open a scope holding the current context plus `fields`; `leave(token)` closes it."""
    return _scope.set({**(_scope.get() or {}), **_clean(fields)})


def enter_fresh(**fields: object) -> contextvars.Token:
    """Open a scope with only `fields`: a request on a reused thread inherits nothing."""
    return _scope.set(_clean(fields))


def leave(token: contextvars.Token) -> None:
    _scope.reset(token)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    token = enter(**fields)
    try:
        yield
    finally:
        leave(token)


def bind(**fields: object) -> None:
    """Add to the innermost open scope (a request, a task) what has just become known, e.g. the
    call a CallSid belongs to. Outside any scope it does nothing: a value bound by a service
    called from a script or a test must not stick to everything that thread logs afterwards."""
    scope = _scope.get()
    if scope is not None:
        scope.update(_clean(fields))  # each scope owns its dict (enter copies), so no parent sees this


def current() -> dict[str, str]:
    return dict(_scope.get() or {})


class ContextFilter(logging.Filter):
    """Copies the current context onto the record (as `record.wt`), on the handler: so it also
    applies to records of loggers that propagate from libraries."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, "wt", None)
        record.wt = {**current(), **fields} if isinstance(fields, dict) else current()
        return True


# -- request ids ----------------------------------------------------------------------------
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def valid_request_id(value: str | None) -> str | None:
    """An incoming X-Request-Id we can log as it is (a load balancer's or a client's), else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return os.urandom(12).hex()


# -- the guard ------------------------------------------------------------------------------
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_BEARER = re.compile(r"\b(bearer|basic)\s+[\w.~+/-]{8,}=*", re.I)
# key=value, key: value, "key": "value" where the key names a secret. The key may be a longer
# name (csrf_token, LIVEKIT_API_SECRET, X-Customer-Key); the value runs to the next separator.
_SECRET_PAIR = re.compile(
    r"""(?P<key>[\w-]*(?:password|passwd|secret|token|api[_-]?key|customer[_-]?key|authorization|cookie|wt_session)[\w-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^\s"',;&}\]]+)""",
    re.I,
)
_SECRET_KEY_NAME = re.compile(r"password|passwd|secret|token|api[_-]?key|customer[_-]?key|authorization|cookie", re.I)
# An E.164-looking number: + and 8-15 digits, maybe grouped. The last four stay (enough to tell
# two callers apart in a log, too few to call anyone); see "Logs" in docs/architecture.md.
# "sip_+14155550199" (LiveKit SIP's identity for a phone leg) counts: only a digit or a + before
# the + stops it.
_PHONE = re.compile(r"(?<![\d+])\+\d(?:[ .-]?\d){7,14}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MASK = "[redacted]"
# Configured secrets (TWILIO_AUTH_TOKEN, LIVEKIT_API_SECRET, ...) masked wherever they appear.
# Shorter ones are left out: "secret", the dev default, is also a word.
_MIN_SECRET_CHARS = 8
_known_secrets: frozenset[str] = frozenset()


def remember_secrets(values: Iterable[str | None]) -> None:
    # Replaced, never changed in place: other threads may be iterating over it in scrub().
    global _known_secrets
    _known_secrets = _known_secrets | {v for v in values if v and len(v) >= _MIN_SECRET_CHARS}


def _mask_phone(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "+…" + digits[-4:]


def mask_phones(text: str) -> str:
    """Phone numbers in `text` with all but their last four digits masked ("+…0199")."""
    return _PHONE.sub(_mask_phone, text)


def scrub(text: str) -> str:
    """Mask what must never be in a log line (module doc). Idempotent."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    text = _JWT.sub("[jwt redacted]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_MASK}", text)
    text = _SECRET_PAIR.sub(lambda m: m.group("key") + m.group("sep") + (m.group("value") if m.group("value").startswith("[") else _MASK), text)
    text = _EMAIL.sub("[email redacted]", text)
    text = mask_phones(text)
    # Cards (Luhn), SSNs, national insurance numbers, CVVs and expiry dates next to their words.
    # Only for text with a written digit: a log line quotes no spoken transcript.
    return redact(text) if any(c.isdigit() for c in text) else text


def _scrub_value(key: str, value: object) -> object:
    if _SECRET_KEY_NAME.search(key):
        return _MASK
    if isinstance(value, str):
        return scrub(value)
    return value


# -- formatters -----------------------------------------------------------------------------
def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "wt", None)
    if not isinstance(fields, dict):
        return {}
    ordered = [k for k in (*CONTEXT_FIELDS, *ACCESS_FIELDS) if k in fields] + sorted(k for k in fields if k not in CONTEXT_FIELDS + ACCESS_FIELDS)
    return {k: _scrub_value(k, fields[k]) for k in ordered}


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        return scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.exc_text:
        return scrub(record.exc_text)
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line (module doc)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
            "pid": record.process,
        }
        for key, value in _fields(record).items():
            out.setdefault(key, value)
        exc = _exception_text(record)
        if exc:
            out["exc"] = exc
        if record.stack_info:
            out["stack"] = scrub(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2024-05-01 12:00:00,123 INFO app.x: message  call_id=… request_id=…`; a traceback
    follows on its own lines, as Python prints it."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {scrub(record.getMessage())}"
        fields = _fields(record)
        if fields:
            line += "  " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        exc = _exception_text(record)
        return f"{line}\n{exc}" if exc else line


def _text_value(value: object) -> str:
    text = str(value)
    # A value with spaces or line breaks is quoted, so one record stays one line.
    return json.dumps(text, ensure_ascii=False) if not text or any(c.isspace() or c == '"' for c in text) else text


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


# -- handlers and configuration --------------------------------------------------------------
class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as logging.lastResort does): a handler made
    while pytest or a CLI runner had swapped the stream must not keep writing to a closed one."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass  # StreamHandler.__init__ assigns it; the property always answers sys.stderr


def build_handler(fmt: str = "text") -> logging.Handler:
    """The one handler of a process (also built by gunicorn's dictConfig, see gunicorn_logconfig)."""
    handler = _StderrHandler()
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    handler._wt_handler = True  # what configure() replaces rather than stacks
    return handler


def configure(fmt: str, level: str, secrets: Iterable[str | None] = ()) -> None:
    """Root logging for this process: one handler to stderr in `fmt`, at `level`. Idempotent."""
    remember_secrets(secrets)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_wt_handler", False)]:
        root.removeHandler(old)
    root.addHandler(build_handler(fmt))
    root.setLevel(level)
    for name, quieter in QUIETER.items():
        logging.getLogger(name).setLevel(quieter)


def gunicorn_logconfig(fmt: str, level: str, *, access_log: bool) -> dict:
    """gunicorn's `logconfig_dict`: its error and access loggers (the master's too) propagate to
    one root handler in the app's format; the access lines are rewritten by AccessFilter. With the
    access log off, gunicorn.access is raised above the level it logs at."""
    return {
        "version": 1,
        "disable_existing_loggers": False,  # app modules imported by gunicorn.conf.py keep logging
        "filters": {"access": {"()": "app.logs.AccessFilter"}},
        "handlers": {"wt": {"()": "app.logs.build_handler", "fmt": fmt}},
        "formatters": {},
        "root": {"level": level, "handlers": ["wt"]},
        "loggers": {
            "gunicorn.error": {"handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO" if access_log else "WARNING", "handlers": [], "propagate": True, "filters": ["access"]},
        },
    }


# The WSGI environ key where a request's log context is left for the access line (gunicorn
# writes it after the app has returned and closed the request's scope).
ENVIRON_KEY = "wt.log_context"
_ENVIRON_ATOM = "{" + ENVIRON_KEY + "}e"  # gunicorn's name for an environ entry among its atoms


class AccessFilter(logging.Filter):
    """Turns gunicorn's access record (its atoms in `record.args`) into `GET /path 200 12.3ms` with
    method, path (never the query string: it can hold tokens), status, duration_ms and the
    request's context. The remote address, referrer and user agent are left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        if not isinstance(atoms, Mapping):
            return True
        fields: dict[str, object] = {}
        context = atoms.get(_ENVIRON_ATOM)
        if isinstance(context, Mapping):
            fields.update(context)
        elif (rid := valid_request_id(str(atoms.get("{x-request-id}o", "")))) is not None:
            fields["request_id"] = rid
        method, path, status = str(atoms.get("m", "-")), str(atoms.get("U", "-")), atoms.get("s", "-")
        micros = atoms.get("D")
        duration_ms = round(micros / 1000, 1) if isinstance(micros, int) else None
        fields.update(method=method, path=path, status=_int_or(status), duration_ms=duration_ms)
        record.wt = fields
        record.msg, record.args = "%s %s %s %sms", (method, path, status, duration_ms)
        return True


def _int_or(value: object) -> object:
    try:
        return int(str(value))
    except ValueError:
        return value
