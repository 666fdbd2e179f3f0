"""Hostile input that used to reach a 500 (or a stack trace in the log) gets a typed 4xx."""
from __future__ import annotations

import json
import logging

from tests.support import start_call

SURROGATE = "\ud800"


def _body(value) -> str:
    return json.dumps(value)  # a lone surrogate is written as the escape \ud800: valid JSON


def _nested_text(depth: int) -> str:
    """JSON text nesting objects `depth` deep (built as text: json.dumps itself would recurse)."""
    return '{"x":' * depth + '"deep"' + "}" * depth


def test_a_lone_surrogate_is_refused_wherever_text_comes_in(client, make_agent, caplog):
    caplog.set_level(logging.ERROR)
    r = client.post("/api/create-call", data=_body({"customer_name": f"Jane {SURROGATE}"}), content_type="application/json")
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_text"  # unauthenticated, and no 500
    a = make_agent("alice")
    call = start_call(client, a)
    r = a.client.post("/api/add-context", data=_body({"session_id": call["session_id"], "text": SURROGATE}),
                      content_type="application/json", headers={"X-CSRF-Token": a.csrf})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_text"
    r = client.post("/api/login", data=_body({"agent_id": "alice", "password": "pw" + SURROGATE * 8}), content_type="application/json")
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_text"
    r = a.client.put(f"/api/calls/{call['session_id']}/summary", data=_body({"structured": {"issue": ["ok", {"k": SURROGATE}]}}),
                     content_type="application/json", headers={"X-CSRF-Token": a.csrf})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_text"
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], [rec.getMessage() for rec in caplog.records]


def test_json_nested_hundreds_deep_is_refused_before_anything_recurses(client, make_agent, caplog):
    caplog.set_level(logging.ERROR)
    a = make_agent("alice")
    call = start_call(client, a)
    for depth in (600, 20):
        r = a.client.put(f"/api/calls/{call['session_id']}/summary", data='{"structured": ' + _nested_text(depth) + "}",
                         content_type="application/json", headers={"X-CSRF-Token": a.csrf})
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json", (depth, r.get_data(as_text=True))
    # A deeply nested body to a Twilio webhook, signature or not, is refused the same way.
    r = client.post("/twilio/transcription", data=_nested_text(5000), content_type="application/json")
    assert r.status_code in (200, 403, 503) and r.mimetype == "text/xml"
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], [rec.getMessage() for rec in caplog.records]
    # Strings that merely look deep are not nesting.
    r = a.client.post("/api/add-context", data=_body({"session_id": call["session_id"], "text": "[" * 500 + "{" * 500}),
                      content_type="application/json", headers={"X-CSRF-Token": a.csrf})
    assert r.status_code == 201
