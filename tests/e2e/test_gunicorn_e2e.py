"""The original workflow against the app served by gunicorn (not the test client), then the same
with the server SIGKILLed and restarted between initiate and complete: nothing is lost."""
from __future__ import annotations

import time

import pytest
import requests

from tests.harness.server import GunicornServer, WorkerProcess, app_env, flask_cli
from tests.support import SSEReader, grants_of

pytestmark = pytest.mark.e2e


def _until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(0.05)  # the worker process does this in its own time


class Browser:
    """An agent's browser: cookie jar + CSRF header, speaking HTTP to the real server."""

    def __init__(self, server: GunicornServer, agent_id: str, password: str):
        self.server, self.id, self.password = server, agent_id, password
        self.http = requests.Session()
        self.csrf = None

    def login(self):
        r = self.http.post(f"{self.server.url}/api/login", json={"agent_id": self.id, "password": self.password}, timeout=10)
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def post(self, path, body=None, expect=200):
        r = self.http.post(f"{self.server.url}{path}", json=body or {}, headers={"X-CSRF-Token": self.csrf}, timeout=10)
        assert r.status_code == expect, (path, r.status_code, r.text)
        return r.json()

    def get(self, path, expect=200):
        r = self.http.get(f"{self.server.url}{path}", timeout=10)
        assert r.status_code == expect, (path, r.status_code, r.text)
        return r.json()

    def events(self, last_event_id=None) -> SSEReader:
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        r = self.http.get(f"{self.server.url}/api/events", headers=headers, stream=True, timeout=(5, 30))
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        return SSEReader(r.iter_content(chunk_size=None))


@pytest.fixture
def env(database_url, livekit_double, make_app):
    make_app()  # an empty, migrated database for this test (the server migrates again: idempotent)
    return app_env(database_url, livekit_double)


def _agents(env, server):
    assert "Schema is up to date" in flask_cli(env, "init-db")
    flask_cli(env, "agents", "add", "alice", "--name", "Alice A", "--password", "alice-password-1")
    flask_cli(env, "agents", "add", "bob", "--name", "Bob B", "--password", "bob-password-12")
    listing = flask_cli(env, "agents", "list")
    assert "alice\tAlice A" in listing and "bob\tBob B" in listing
    a, b = Browser(server, "alice", "alice-password-1"), Browser(server, "bob", "bob-password-12")
    a.login()
    b.login()
    return a, b


@pytest.mark.parametrize("restart_mid_transfer", [False, True], ids=["steady", "sigkill-restart"])
def test_original_workflow_under_gunicorn(env, tmp_path, livekit_double, restart_mid_transfer):
    key, secret = livekit_double.api_key, livekit_double.api_secret
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        a, b = _agents(env, server)
        b_stream = b.events()
        ready = b_stream.wait_for("ready")

        customer = requests.post(f"{server.url}/api/create-call", json={"customer_name": "Jane Doe"}, timeout=10)
        assert customer.status_code == 201, customer.text
        call = customer.json()
        sid, room = call["session_id"], call["room_name"]
        assert call["agent_id"] == "alice" and room == f"call_{sid}" and room in livekit_double.rooms
        assert grants_of(call["token"], key, secret).video.room == room

        joined = a.post("/api/token", {"session_id": sid})
        assert joined["room_name"] == room and grants_of(joined["token"], key, secret).identity == "agent-alice"
        for text in ("Customer reports double charge on order #A-7731", "Amount $89.00 charged twice on 3 Nov", "Wants refund to the original card"):
            a.post("/api/add-context", {"session_id": sid, "text": text}, expect=201)

        started = a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"}, expect=201)
        transfer = started["transfer"]
        assert transfer["status"] == "ringing" and "A-7731" in transfer["summary"]["text"]
        assert grants_of(started["token"], key, secret).video.room == transfer["transfer_room"]
        assert transfer["transfer_room"] in livekit_double.rooms
        assert a.get(f"/api/calls/{sid}")["call"]["status"] == "on_hold"

        pushed = b_stream.wait_for("transfer_requested", timeout=10)
        assert pushed["data"]["transfer_id"] == transfer["id"] and int(pushed["id"]) > int(ready["id"])
        polled = b.get(f"/api/notifications/bob?since={ready['id']}")["notifications"]
        assert [n["type"] for n in polled] == ["transfer_requested"] and polled[0]["id"] == int(pushed["id"])

        if restart_mid_transfer:
            server.kill()
            with pytest.raises(requests.ConnectionError):
                requests.get(f"{server.url}/api/health", timeout=2)
            server.start()
            # The same cookies still work: sessions live in the database, not in the process.
            assert a.get(f"/api/calls/{sid}")["call"]["status"] == "on_hold"
            b_stream = b.events(last_event_id=pushed["id"])

        accepted = b.post("/api/accept-transfer", {"transfer_id": transfer["id"]})
        assert accepted["transfer"]["status"] == "briefing"
        assert grants_of(accepted["token"], key, secret).video.room == transfer["transfer_room"]
        a_stream = a.events(last_event_id=pushed["id"])
        assert a_stream.wait_for("transfer_accepted", timeout=10)["data"]["transfer_id"] == transfer["id"]

        done = a.post("/api/complete-transfer", {"transfer_id": transfer["id"]})
        assert done["transfer"]["status"] == "completed"
        _until(lambda: transfer["transfer_room"] not in livekit_double.rooms, "the worker deleting the transfer room")
        assert b_stream.wait_for("transfer_completed", timeout=10)["data"]["customer_room"] == room

        b_token = b.post("/api/token", {"session_id": sid})
        claims = grants_of(b_token["token"], key, secret)
        assert b_token["room_name"] == room and claims.video.room == room and claims.identity == "agent-bob"
        assert a.post("/api/agent-exit-room", {"session_id": sid})["outcome"] == "left"
        a.post("/api/token", {"session_id": sid}, expect=403)

        detail = b.get(f"/api/calls/{sid}")["call"]
        assert detail["status"] == "transferred" and detail["agent_id"] == "bob"
        assert [e["text"] for e in detail["context"]][1:] == [
            "Customer reports double charge on order #A-7731",
            "Amount $89.00 charged twice on 3 Nov",
            "Wants refund to the original card",
        ]
        ended = requests.post(
            f"{server.url}/api/end-call", json={"session_id": sid}, headers={"X-Customer-Key": call["customer_key"]}, timeout=10
        )
        assert ended.status_code == 200 and ended.json()["call"]["status"] == "completed"
        assert b_stream.wait_for("call_ended", timeout=10)["data"]["session_id"] == sid
        _until(lambda: room not in livekit_double.rooms, "the worker deleting the call room")
    finally:
        worker.stop()
        server.stop()


def test_a_worker_killed_mid_task_leaves_it_to_another(env, tmp_path, livekit_double, database_url):
    """SIGKILL a worker while its room deletion is in flight: once its claim lapses, a second
    worker deletes the room; nothing is left behind and nothing runs twice in effect."""
    env = dict(env, WORKER_TASK_LEASE_S="3")
    server = GunicornServer(env, tmp_path / "gunicorn.log").start()
    first = WorkerProcess(env, tmp_path / "worker-1.log").start()
    second = None
    try:
        call = requests.post(f"{server.url}/api/create-call", json={"customer_name": "Jane Doe"}, timeout=10).json()
        room = call["room_name"]
        livekit_double.hang()
        ended = requests.post(f"{server.url}/api/end-call", json={"session_id": call["session_id"]},
                              headers={"X-Customer-Key": call["customer_key"]}, timeout=10)
        assert ended.status_code == 200  # answered at once, whatever LiveKit is doing
        _until(lambda: "DeleteRoom" in livekit_double.hung, "the first worker's deletion in flight")
        first.kill()
        livekit_double.release(drop=True)  # the dead worker's request never took effect
        assert room in livekit_double.rooms
        second = WorkerProcess(env, tmp_path / "worker-2.log").start()
        _until(lambda: room not in livekit_double.rooms, "the second worker deleting the room", timeout=20)
        listed = flask_cli(env, "tasks", "list")
        line = next(row for row in listed.splitlines() if "livekit.delete_room" in row)
        assert "\tdone\t" in line and "\t2/10\t" in line, listed  # the killed attempt, then the one that worked
        assert "failed" not in listed.splitlines()[0]
    finally:
        livekit_double.release()
        for process in (first, second):
            if process is not None:
                process.stop()
        server.stop()
