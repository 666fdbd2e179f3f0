"""Production's log format under gunicorn and the worker: every line of both processes is one JSON
object (gunicorn's own lines too), access lines carry the request id and no query string, and no
password, cookie, CSRF or LiveKit token reaches the logs (docs/architecture.md §13)."""
from __future__ import annotations

import json

import pytest
import requests

from tests.harness.server import GunicornServer, WorkerProcess, app_env, flask_cli
from tests.log_audit import find

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(database_url, livekit_double, make_app):
    make_app()  # an empty, migrated database for this test
    return app_env(database_url, livekit_double, LOG_FORMAT="json")


def json_lines(path) -> list[dict]:
    lines = path.read_text().splitlines()
    assert lines, f"{path.name} is empty"
    bad = [line for line in lines if not line.startswith("{")]
    assert bad == [], f"{path.name} has lines that are not JSON: {bad[:5]}"
    return [json.loads(line) for line in lines]


def test_gunicorn_and_the_worker_write_only_json_lines(env, tmp_path, livekit_double):
    password = "alice-password-1"
    flask_cli(env, "agents", "add", "alice", "--name", "Alice A", "--password", password)
    server = GunicornServer(env, tmp_path / "gunicorn.log")
    server.env["ACCESS_LOG"] = "1"
    server.start()
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        http = requests.Session()
        login = http.post(f"{server.url}/api/login", json={"agent_id": "alice", "password": password}, timeout=10)
        assert login.status_code == 200
        csrf = login.json()["csrf_token"]
        call = requests.post(f"{server.url}/api/create-call", json={"customer_name": "Jane Doe"}, timeout=10).json()
        token = http.post(f"{server.url}/api/token", json={"session_id": call["session_id"]}, headers={"X-CSRF-Token": csrf}, timeout=10)
        assert token.status_code == 200
        probe = http.get(f"{server.url}/api/me?access_token=should-not-be-logged", headers={"X-Request-Id": "e2e-probe-1"}, timeout=10)
        assert probe.headers["X-Request-Id"] == "e2e-probe-1"
    finally:
        server.stop()
        worker.stop()

    web = json_lines(tmp_path / "gunicorn.log")
    assert {"gunicorn.error", "gunicorn.access"} <= {r["logger"] for r in web}
    (me,) = [r for r in web if r.get("request_id") == "e2e-probe-1"]
    assert me["logger"] == "gunicorn.access" and me["path"] == "/api/me" and me["status"] == 200 and me["agent_id"] == "alice"
    assert isinstance(me["duration_ms"], float)
    (minted,) = [r for r in web if r.get("path") == "/api/token"]
    assert minted["call_id"] == call["session_id"] and minted["agent_id"] == "alice"
    assert any(r["msg"].startswith("Worker ") for r in json_lines(tmp_path / "worker.log"))

    text = (tmp_path / "gunicorn.log").read_text() + (tmp_path / "worker.log").read_text()
    cookie = http.cookies.get("wt_session")
    needles = {password: "a password", csrf: "a CSRF token", cookie: "a session cookie", call["token"]: "a LiveKit token",
               call["customer_key"]: "a customer key", token.json()["token"]: "a LiveKit token", "should-not-be-logged": "a query string",
               livekit_double.api_secret: "LIVEKIT_API_SECRET", env["SECRET_KEY"]: "SECRET_KEY"}
    assert find(text, needles) == []
