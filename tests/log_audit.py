"""What the app logs during tests, as production would write it, and the check that none of it is
a secret or a customer's personal data (docs/architecture.md §13).

`LogCapture` is a handler like the app's own (`app.logs`: the JSON formatter, the context
filter) that keeps every line. `remember(value, what)` names a value no log line may contain:
tests/support.py remembers every agent password, session cookie, CSRF token, LiveKit token and
customer key the suites' clients see, so the session-wide capture (tests/conftest.py) is checked
against all of them at the end of a run, with the fixtures' PII (`static_needles`).

A needle is found by substring, also JSON-escaped (the way it would appear in a JSON line). Many
needles are random tokens: those are indexed by their first characters and looked for only inside
token-like runs of the log, so a run of thousands of tests is checked in seconds.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from app.logs import ContextFilter, JsonFormatter

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "contexts"
_KEY = 12
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_.~+/=-]+")
_TOKEN_RUN = re.compile(rf"[A-Za-z0-9_.~+/=-]{{{_KEY},}}")

_lock = threading.Lock()
_needles: dict[str, str] = {}  # value -> what it is
_recording = False


def remember(value: str | None, what: str) -> None:
    """A value that must not appear in any log line of this run (no-op outside an audited run)."""
    if _recording and isinstance(value, str) and len(value) >= 6:
        with _lock:
            _needles.setdefault(value, what)


def remembered() -> dict[str, str]:
    with _lock:
        return dict(_needles)


def static_needles() -> dict[str, str]:
    """The PII in the context fixtures: what their `must_not_contain` says redaction removes."""
    found = {}
    for path in sorted(FIXTURES.glob("*.json")):
        for value in json.loads(path.read_text()).get("must_not_contain", []):
            # Short ones ("987", a CVV; "11/26") would match timestamps and counters.
            if len(re.sub(r"\D", "", value)) >= 9 or "@" in value:
                found[value] = f"PII from {path.name}"
    return found


class LogCapture(logging.Handler):
    """Every record, formatted by the app's JSON formatter, kept in memory and/or appended to a file."""

    def __init__(self, path: Path | None = None, *, keep: bool = True):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(ContextFilter())
        self.path = path
        self.keep = keep
        self.lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 (closed in close())

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self._lines_lock:
            if self.keep:
                self.lines.append(line)
            if self._file:
                self._file.write(line + "\n")

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        super().close()

    def __enter__(self) -> LogCapture:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self)
        self.close()


def start_recording() -> None:
    global _recording
    _recording = True


def find(text: str, needles: dict[str, str]) -> list[str]:
    """Every needle found in `text`, as 'what: value'."""
    indexed: dict[str, list[str]] = {}
    plain = []
    for value in needles:
        if len(value) >= _KEY and _TOKEN_CHARS.fullmatch(value):
            indexed.setdefault(value[:_KEY], []).append(value)
        else:
            plain.append(value)
    hits = set()
    for value in plain:
        escaped = json.dumps(value, ensure_ascii=False)[1:-1]
        if value in text or escaped in text:
            hits.add(value)
    if indexed:
        for run in _TOKEN_RUN.finditer(text):
            token = run.group(0)
            for i in range(len(token) - _KEY + 1):
                for value in indexed.get(token[i : i + _KEY], ()):
                    if token.startswith(value, i):
                        hits.add(value)
    return sorted(f"{needles[v]}: {v}" for v in hits)


def lines_with(text: str, hits: Iterable[str], limit: int = 5) -> list[str]:
    """Some log lines that hold the values found, for the failure message."""
    out = []
    values = [h.split(": ", 1)[1] for h in hits]
    for line in text.splitlines():
        if any(v in line for v in values):
            out.append(line[:400])
            if len(out) >= limit:
                break
    return out
