"""app.logs: the formats, the context, request ids, the guard, gunicorn's access lines."""
from __future__ import annotations

import io
import json
import logging
import re
import threading

import pytest

from app import logs
from app.config import load_settings, log_choice, settings_problems
from tests import log_audit

# tests/fault/stack.py recognises the first line of a text record by this.
FAULT_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d |\[\d{4}-)")


def record(msg: str = "hello %s", args=("world",), *, exc_info=None, name: str = "app.test", level: int = logging.WARNING) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)
    logs.ContextFilter().filter(rec)
    return rec


def as_json(rec: logging.LogRecord) -> dict:
    line = logs.JsonFormatter().format(rec)
    assert "\n" not in line
    return json.loads(line)


# -- formats --------------------------------------------------------------------------------
def test_a_json_line_has_the_time_level_logger_message_and_context():
    with logs.log_context(request_id="r-1", call_id="c1"):
        out = as_json(record())
    assert out["msg"] == "hello world" and out["level"] == "WARNING" and out["logger"] == "app.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", out["ts"])
    assert out["request_id"] == "r-1" and out["call_id"] == "c1"
    assert "agent_id" not in out  # unknown fields are left out, not null


def test_an_exception_is_one_string_field_of_the_one_line():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        out = as_json(record("failed", (), exc_info=sys.exc_info()))
    assert out["msg"] == "failed"
    assert out["exc"].startswith("Traceback (most recent call last)") and out["exc"].endswith("RuntimeError: boom")


def test_a_message_with_line_breaks_stays_one_json_line():
    assert as_json(record("two\nlines", ()))["msg"] == "two\nlines"


def test_the_text_format_starts_as_the_fault_suite_expects_and_ends_with_the_context():
    with logs.log_context(agent_id="alice", call_id="c 1"):
        line = logs.TextFormatter().format(record())
    assert FAULT_STAMP.match(line)
    assert line.endswith('app.test: hello world  agent_id=alice call_id="c 1"'), line


# -- context --------------------------------------------------------------------------------
def test_scopes_nest_and_close():
    with logs.log_context(request_id="r"):
        with logs.log_context(call_id="c"):
            assert logs.current() == {"request_id": "r", "call_id": "c"}
        assert logs.current() == {"request_id": "r"}
    assert logs.current() == {}


def test_bind_adds_to_the_innermost_scope_only():
    with logs.log_context(request_id="r"):
        with logs.log_context(task_id=1):
            logs.bind(call_id="c")
            assert logs.current() == {"request_id": "r", "task_id": "1", "call_id": "c"}
        assert logs.current() == {"request_id": "r"}


def test_bind_outside_any_scope_changes_nothing():
    logs.bind(call_id="c")
    assert logs.current() == {}


def test_a_fresh_scope_inherits_nothing():
    with logs.log_context(call_id="stale"):
        token = logs.enter_fresh(request_id="r")
        assert logs.current() == {"request_id": "r"}
        logs.leave(token)


def test_only_declared_fields_and_bounded_values():
    with pytest.raises(ValueError, match="customer_name"):
        logs.enter(customer_name="Jane")
    with logs.log_context(call_id="x" * 500):
        assert len(logs.current()["call_id"]) == logs.MAX_FIELD_CHARS


def test_another_thread_does_not_see_this_threads_context():
    seen = {}
    with logs.log_context(call_id="c"):
        t = threading.Thread(target=lambda: seen.update(logs.current()))
        t.start()
        t.join()
    assert seen == {}


# -- request ids ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["abc", "7f1e-22.x_Y", "a" * 64])
def test_sane_request_ids_are_kept(value):
    assert logs.valid_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "a" * 65, "has space", "line\nbreak", "x=1", "ünï", "a/b"])
def test_other_request_ids_are_refused(value):
    assert logs.valid_request_id(value) is None


def test_new_request_ids_are_valid_and_distinct():
    ids = {logs.new_request_id() for _ in range(100)}
    assert len(ids) == 100 and all(logs.valid_request_id(i) for i in ids)


# -- the guard ------------------------------------------------------------------------------
@pytest.mark.parametrize("card", ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"])
def test_card_numbers_are_masked_to_their_last_four(card):
    out = logs.scrub(f"charge failed for {card} today")
    assert card not in out and "ending" in out and out.endswith("today")


def test_a_number_that_fails_luhn_survives():
    assert logs.scrub("order 4111111111111112 shipped") == "order 4111111111111112 shipped"


def test_ssns_emails_and_phone_numbers():
    out = logs.scrub("ssn 078-05-1120, mail jane.roe@example.com, call +1 415 555 0199 or sip_+14155550123")
    assert "078-05-1120" not in out and "jane.roe@example.com" not in out
    assert "555 0199" not in out and "+14155550123" not in out
    assert "+…0199" in out and "sip_+…0123" in out


def test_tokens_and_secret_pairs():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    text = f'Authorization: Bearer abcdefghijkl0123 token={jwt} {{"csrf_token": "s3cr3t-value"}} password=hunter22 X-Customer-Key: k-123456'
    out = logs.scrub(text)
    for secret in ("abcdefghijkl0123", jwt, "s3cr3t-value", "hunter22", "k-123456"):
        assert secret not in out, (secret, out)


def test_configured_secrets_are_masked_wherever_they_appear():
    logs.remember_secrets(["sk-live-0123456789abcdef", "short"])
    assert logs.scrub("LLM said sk-live-0123456789abcdef is invalid") == "LLM said [redacted] is invalid"
    assert logs.scrub("a short word") == "a short word"  # too short to be told from a word


def test_the_guard_is_idempotent_and_leaves_ordinary_lines_alone():
    line = "task 41 (livekit.delete_room) attempt 2 failed, will retry: LiveKit unreachable"
    assert logs.scrub(line) == line
    once = logs.scrub("card 4111 1111 1111 1111 token=abc12345 +14155550199 a@b.co")
    assert logs.scrub(once) == once


def test_context_and_extra_values_are_guarded_too():
    rec = record()
    rec.wt = {"request_id": "4111111111111111", "api_token": "abc"}
    out = as_json(rec)
    assert "4111111111111111" not in json.dumps(out) and out["api_token"] == "[redacted]"


# -- configuration --------------------------------------------------------------------------
def test_configure_replaces_its_handler_rather_than_stacking():
    root = logging.getLogger()
    before = [h for h in root.handlers if not getattr(h, "_wt_handler", False)]
    level = root.level
    try:
        for fmt in ("text", "json", "json"):
            logs.configure(fmt, "INFO")
        ours = [h for h in root.handlers if getattr(h, "_wt_handler", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, logs.JsonFormatter)
        assert [h for h in root.handlers if not getattr(h, "_wt_handler", False)] == before
    finally:
        logs.configure("text", logging.getLevelName(level))


def test_the_handler_writes_to_the_current_stderr(monkeypatch):
    handler = logs.build_handler("json")
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    handler.emit(record())
    assert json.loads(swapped.getvalue())["msg"] == "hello world"


def test_format_follows_app_env_unless_set():
    assert load_settings(environ={}, overrides={"APP_ENV": "test"}).log_format == "text"
    assert log_choice({"APP_ENV": "production"}) == ("json", "INFO")
    assert log_choice({"APP_ENV": "production", "LOG_FORMAT": "text", "LOG_LEVEL": "debug"}) == ("text", "DEBUG")
    assert log_choice({"LOG_FORMAT": "xml", "LOG_LEVEL": "loud"}) == ("text", "INFO")  # the app refuses these at start


def test_bad_log_settings_are_configuration_problems():
    problems = settings_problems(environ={}, overrides={"APP_ENV": "test", "LOG_FORMAT": "xml", "LOG_LEVEL": "loud"})
    assert any(p.startswith("LOG_FORMAT must be") for p in problems) and any(p.startswith("LOG_LEVEL must be") for p in problems)


# -- gunicorn ----------------------------------------------------------------------------------
class SafeAtoms(dict):
    """gunicorn.glogging.SafeAtoms as gunicorn 27 has it: '-' for anything missing."""

    def __getitem__(self, k):
        return super().__getitem__(k.lower() if k.startswith("{") else k) if (k.lower() if k.startswith("{") else k) in self else "-"


def access_record(atoms: dict) -> logging.LogRecord:
    rec = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s" %(s)s', (), None)
    rec.args = SafeAtoms(atoms)  # LogRecord unwraps a one-mapping tuple; gunicorn's record has the mapping
    return rec


def test_an_access_line_has_method_path_status_duration_and_the_requests_context_but_no_query():
    rec = access_record({"h": "203.0.113.9", "r": "GET /api/calls?token=eyJabc HTTP/1.1", "m": "GET", "U": "/api/calls", "q": "token=eyJabc",
                         "s": "200", "D": 12345, "{wt.log_context}e": {"request_id": "r1", "agent_id": "alice"}})
    assert logs.AccessFilter().filter(rec)
    out = as_json(rec)
    assert out["msg"] == "GET /api/calls 200 12.3ms"
    assert {k: out[k] for k in ("request_id", "agent_id", "method", "path", "status", "duration_ms")} == {
        "request_id": "r1", "agent_id": "alice", "method": "GET", "path": "/api/calls", "status": 200, "duration_ms": 12.3}
    assert "token" not in json.dumps(out) and "203.0.113.9" not in json.dumps(out)


def test_an_access_line_for_a_request_the_app_never_saw_takes_the_request_id_header():
    rec = access_record({"m": "GET", "U": "/x", "s": "400", "D": 100, "{x-request-id}o": "abc"})
    logs.AccessFilter().filter(rec)
    assert as_json(rec)["request_id"] == "abc"


def test_gunicorn_logconfig_sends_both_loggers_to_the_one_root_handler():
    config = logs.gunicorn_logconfig("json", "INFO", access_log=False)
    assert config["disable_existing_loggers"] is False and config["root"]["handlers"] == ["wt"]
    assert all(config["loggers"][name]["handlers"] == [] and config["loggers"][name]["propagate"] for name in ("gunicorn.error", "gunicorn.access"))
    assert config["loggers"]["gunicorn.access"]["level"] == "WARNING"  # ACCESS_LOG=0: gunicorn logs access at INFO


# -- the audit's search -------------------------------------------------------------------------
def test_the_log_audit_finds_a_token_inside_a_longer_run_and_escaped_values():
    token = "Zx9" + "q" * 30 + ".sig_part-01"
    text = json.dumps({"msg": f"cookie wt_session=.{token}xyz", "b": 'pw "quoted" secret'})
    hits = log_audit.find(text, {token: "a token", 'pw "quoted" secret': "a password", "absent-value-123456": "other"})
    assert hits == ["a password: pw \"quoted\" secret", f"a token: {token}"]
