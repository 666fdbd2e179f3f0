"""Each request's log lines carry its id and what it is about (app.request_logs, app.logs)."""
from __future__ import annotations

import logging

from flask import request

from app.api.guards import agent_required
from app.api.validation import Field, parse_json
from tests.livekit_webhooks import send, session
from tests.log_audit import LogCapture
from tests.support import start_call


def test_a_sane_request_id_is_kept_and_echoed(client):
    r = client.get("/api/health", headers={"X-Request-Id": "lb-7f1e.22"})
    assert r.headers["X-Request-Id"] == "lb-7f1e.22"


def test_a_missing_or_unfit_request_id_is_replaced(client):
    mine = client.get("/api/health").headers["X-Request-Id"]
    theirs = client.get("/api/health", headers={"X-Request-Id": "4111 1111 1111 1111"}).headers["X-Request-Id"]
    assert len({mine, theirs}) == 2 and all(len(r) == 24 and int(r, 16) >= 0 for r in (mine, theirs))


def test_an_api_requests_lines_carry_its_id_the_agent_and_the_call(app, make_agent):
    log = logging.getLogger("tests.probe")

    @agent_required
    def probe():
        parse_json(request, {"session_id": Field(str)})
        log.warning("probe")
        return {}

    app.add_url_rule("/api/probe", "probe", probe, methods=["POST"])
    alice = make_agent("alice")
    with LogCapture() as capture:
        r = alice.post("/api/probe", {"session_id": "C123"}, headers={"X-Request-Id": "req-1"})
        log.warning("after the request")
    assert r.status_code == 200
    (line,) = [rec for rec in capture.records() if rec["msg"] == "probe"]
    assert (line["request_id"], line["agent_id"], line["call_id"]) == ("req-1", "alice", "C123")
    (after,) = [rec for rec in capture.records() if rec["msg"] == "after the request"]
    assert not {"request_id", "agent_id", "call_id"} & set(after)  # the scope closed with the request


def test_a_livekit_webhooks_line_carries_the_call_of_its_room_and_the_agent(client, livekit_double, make_agent):
    alice = make_agent("alice")
    call = start_call(client)
    with LogCapture() as capture:
        send(client, livekit_double, "participant_joined", room=call["room_name"], participant=session(f"agent-{alice.id}", "PA_a", 1000))
    (line,) = [rec for rec in capture.records() if rec["msg"].startswith("livekit webhook")]
    assert line["call_id"] == call["session_id"] and line["agent_id"] == "alice" and len(line["request_id"]) == 24
