"""Live event streams cannot starve anything: streams per session and per agent are limited (a
new one closes the oldest), a process keeps threads for webhooks, and a stream kept busy by
events still notices that its session expired."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
import requests
from twilio.request_validator import RequestValidator

from app.events import emit
from tests.harness.server import GunicornServer, app_env, flask_cli
from tests.support import AgentClient, SSEReader


def _open(agent: AgentClient) -> SSEReader:
    r = agent.client.get("/api/events", buffered=False)
    assert r.status_code == 200, r.get_data(as_text=True)
    stream = SSEReader(r.response)
    assert stream.wait_for("ready")["event"] == "ready"
    return stream


def _second_login(app, agent: AgentClient) -> AgentClient:
    other = AgentClient(app.test_client(), agent.id, agent.password)
    other.login()
    return other


def test_a_third_stream_of_one_session_closes_the_oldest(app, make_agent):
    bob = make_agent("bob")
    first, second = _open(bob), _open(bob)
    third = _open(bob)
    replaced = first.wait_for("stream_replaced")
    assert replaced["event"] == "stream_replaced" and replaced["data"]["reason"] == "too_many_streams"
    assert first.next()["event"] == "__closed__"
    # The two newest carry on, and still get the agent's events.
    with app.extensions["wt"].db.transaction() as s:
        emit(s, "agent_left", {"agent_id": "x"}, audiences=["bob"], call_id=None)
    for stream in (second, third):
        assert stream.wait_for("agent_left")["event"] == "agent_left"


def test_streams_beyond_the_agent_limit_close_the_oldest_across_sessions(app, make_agent):
    bob = make_agent("bob")
    browsers = [bob] + [_second_login(app, bob) for _ in range(6)]
    streams = [_open(b) for b in browsers]  # seven sessions, one stream each; the limit is six
    assert streams[0].wait_for("stream_replaced")["event"] == "stream_replaced"
    assert streams[0].next()["event"] == "__closed__"
    # The other six are still open: each one sees an event sent to bob now.
    with app.extensions["wt"].db.transaction() as s:
        emit(s, "agent_left", {"agent_id": "x"}, audiences=["bob"], call_id=None)
    for stream in streams[1:]:
        assert stream.wait_for("agent_left")["event"] == "agent_left"


def test_a_full_process_answers_more_streams_with_503_and_keeps_its_threads(make_app):
    app = make_app(GUNICORN_THREADS=4, SSE_THREAD_RESERVE=2)
    svc = app.extensions["wt"]
    for agent_id in ("ann", "ben", "cat"):
        svc.agents.add(agent_id, agent_id.title(), f"{agent_id}-password")
    ann, ben, cat = (AgentClient(app.test_client(), a, f"{a}-password") for a in ("ann", "ben", "cat"))
    for agent in (ann, ben, cat):
        agent.login()
    _open(ann), _open(ben)
    r = cat.client.get("/api/events", buffered=False)
    assert r.status_code == 503 and r.json["error"]["code"] == "streams_full"
    assert int(r.headers["Retry-After"]) > 0
    # Refused before anything was written: no stream row for cat.
    from sqlalchemy import select

    from app.models import EventStream

    with svc.db.reading() as s:
        assert list(s.scalars(select(EventStream.agent_id).where(EventStream.agent_id == "cat"))) == []


def test_a_client_gone_before_the_first_byte_gives_its_slot_back(make_app):
    app = make_app(GUNICORN_THREADS=3, SSE_THREAD_RESERVE=2)
    svc = app.extensions["wt"]
    svc.agents.add("ann", "Ann", "ann-password")
    ann = AgentClient(app.test_client(), "ann", "ann-password")
    ann.login()
    for _ in range(3):
        r = ann.client.get("/api/events", buffered=False)
        assert r.status_code == 200
        r.close()  # the server closes the body without ever iterating it
    assert svc.dispatcher.subscriber_count() == 0


def test_a_stream_kept_busy_by_events_still_ends_when_its_session_expires(make_app):
    app = make_app(SESSION_LIFETIME_S=2, SSE_HEARTBEAT_S=60)
    svc = app.extensions["wt"]
    svc.agents.add("ann", "Ann", "ann-password")
    ann = AgentClient(app.test_client(), "ann", "ann-password")
    ann.login()
    stream = _open(ann)
    deadline = time.monotonic() + 10
    ended = None
    while time.monotonic() < deadline:
        with svc.db.transaction() as s:  # an event every 100 ms: the heartbeat never comes round
            emit(s, "agent_left", {"agent_id": "x"}, audiences=["ann"], call_id=None)
        item = stream.next(timeout=0.1) if not stream._queue.empty() else None
        while item is not None and item["event"] == "agent_left":
            item = stream.next(timeout=0.1) if not stream._queue.empty() else None
        if item is not None:
            ended = item
            break
        time.sleep(0.1)  # paces the events; the assertion does not depend on it
    assert ended is not None and ended["event"] == "session_ended" and ended["data"]["reason"] == "expired"


@pytest.mark.e2e
def test_one_login_cannot_starve_webhooks_on_a_small_gunicorn(database_url, livekit_double, make_app, tmp_path):
    """The finding as reproduced: 1 worker x 4 threads, four `curl -N` streams from one login and
    three more agents streaming too; /twilio/voice and /api/health must still answer at once."""
    make_app()
    token, sid = "f" * 32, "AC" + "1" * 32
    env = app_env(
        database_url, livekit_double, EVENT_POLL_INTERVAL_S="0.05", SSE_THREAD_RESERVE="2",
        TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=token, TWILIO_PHONE_NUMBER="+14155550100",
    )
    for agent_id in ("ann", "ben", "cat", "dan"):
        flask_cli(env, "agents", "add", agent_id, "--name", agent_id.title(), "--password", f"{agent_id}-password")
    server = GunicornServer(dict(env, PUBLIC_BASE_URL="http://placeholder"), tmp_path / "gunicorn.log", workers=1, threads=4)
    server.env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{server.port}"
    server.start()
    opened: list[requests.Response] = []
    try:
        sessions = {}
        for agent_id in ("ann", "ben", "cat", "dan"):
            http = requests.Session()
            assert http.post(f"{server.url}/api/login", json={"agent_id": agent_id, "password": f"{agent_id}-password"}, timeout=10).status_code == 200
            sessions[agent_id] = http
        statuses = []
        for agent_id in ["ann"] * 4 + ["ben", "cat", "dan"]:
            r = sessions[agent_id].get(f"{server.url}/api/events", stream=True, timeout=(5, 30))
            opened.append(r)
            statuses.append(r.status_code)
        assert statuses.count(503) >= 1, statuses  # the reserve turned streams away
        url = f"{server.url}/twilio/voice"
        params = {"CallSid": "CA" + "2" * 32, "AccountSid": sid, "From": "+14155550199", "To": "+14155550100", "CallStatus": "ringing", "Direction": "inbound"}
        signature = RequestValidator(token).compute_signature(url, params)
        started = time.monotonic()
        voice = requests.post(url, data=urlencode(params), headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
        assert voice.status_code == 200 and "<Response>" in voice.text, voice.text
        health = requests.get(f"{server.url}/api/health", timeout=5)
        assert health.status_code in (200, 503) and time.monotonic() - started < 5
    finally:
        for r in opened:
            r.close()
        server.stop()
