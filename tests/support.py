"""Test helpers shared by app, e2e and bench code."""
from __future__ import annotations

import json

from livekit import api as lk

from tests import log_audit


class AgentClient:
    """One agent's browser: its own cookie jar and CSRF token, on a Flask test client."""

    def __init__(self, client, agent_id: str, password: str):
        self.client = client
        self.id = agent_id
        self.password = password
        self.csrf: str | None = None

    def login(self):
        r = self.client.post("/api/login", json={"agent_id": self.id, "password": self.password})
        assert r.status_code == 200, r.get_data(as_text=True)
        self.csrf = r.json["csrf_token"]
        log_audit.remember(self.password, "an agent's password")
        log_audit.remember(self.csrf, "a CSRF token")
        cookie = self.client.get_cookie("wt_session")
        log_audit.remember(cookie.value if cookie else None, "a session cookie")
        return r

    def post(self, path: str, body: dict | None = None, **kw):
        headers = dict(kw.pop("headers", {}))
        if self.csrf:
            headers.setdefault("X-CSRF-Token", self.csrf)
        return remember_secrets(self.client.post(path, json=body, headers=headers, **kw))

    def get(self, path: str, **kw):
        return remember_secrets(self.client.get(path, **kw))

    def notifications(self, since: int | None = None) -> list[dict]:
        query = f"?since={since}" if since is not None else ""
        r = self.get(f"/api/notifications/{self.id}{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.json["notifications"]

    def types(self, since: int | None = None) -> list[str]:
        return [n["type"] for n in self.notifications(since)]


# Keys of API answers whose values are credentials (LiveKit tokens, a web customer's key).
SECRET_KEYS = ("token", "customer_key", "csrf_token")


def remember_secrets(response):
    """Names the credentials in an API answer to the log audit (tests/log_audit.py)."""
    body = response.get_json(silent=True) if response.is_json else None
    if isinstance(body, dict):
        for key in SECRET_KEYS:
            log_audit.remember(body.get(key), f"{key} from {response.request.path}")
    return response


def grants_of(token: str, key: str, secret: str) -> lk.Claims:
    return lk.TokenVerifier(key, secret).verify(token)


def parse_sse(raw: str) -> list[dict]:
    """Split an SSE byte stream into events: [{"id", "event", "data"}], comments dropped."""
    events = []
    for block in raw.split("\n\n"):
        item: dict = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            item[field] = value
        if "event" in item or "data" in item:
            if str(item.get("data", "")).startswith("{"):
                item["data"] = json.loads(item["data"])
            events.append(item)
    return events


def start_call(client, agent: AgentClient | None = None, name: str = "Jane Doe") -> dict:
    """A web customer starts a call; if `agent` is given they join it (the call becomes active)."""
    r = remember_secrets(client.post("/api/create-call", json={"customer_name": name}))
    assert r.status_code == 201, r.get_data(as_text=True)
    call = r.json
    if agent is not None:
        assert call["agent_id"] == agent.id, call
        joined = agent.post("/api/token", {"session_id": call["session_id"]})
        assert joined.status_code == 200, joined.get_data(as_text=True)
    return call


def start_transfer(a: AgentClient, call: dict, to: str) -> dict:
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": to})
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["transfer"]


def call_status(agent: AgentClient, session_id: str) -> str:
    r = agent.get(f"/api/calls/{session_id}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["call"]["status"]


class SSEReader:
    """Reads a streaming SSE response on a thread and hands parsed events to the test."""

    def __init__(self, chunks):
        import queue
        import threading

        self._chunks = chunks
        self._queue: queue.Queue[dict] = queue.Queue()
        self.comments = 0
        self._buffer = ""
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        try:
            self._read()
        except Exception as err:  # a server that dies mid-stream ends the stream; tests see why
            self._queue.put({"event": "__closed__", "error": repr(err)})

    def _read(self):
        for chunk in self._chunks:
            self._buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                if block.startswith(":"):
                    self.comments += 1
                    continue
                for event in parse_sse(block + "\n\n"):
                    self._queue.put(event)
        self._queue.put({"event": "__closed__"})

    def next(self, timeout: float = 5.0) -> dict:
        return self._queue.get(timeout=timeout)

    def wait_for(self, event_type: str, timeout: float = 5.0) -> dict:
        import time

        deadline = time.monotonic() + timeout
        while True:
            item = self.next(max(0.01, deadline - time.monotonic()))
            if item.get("event") in (event_type, "__closed__"):
                return item


def open_sse(client, path: str, **headers) -> SSEReader:
    """Open an event stream of the app (a Flask test client): answered 200 as an uncached
    text/event-stream, read on a thread."""
    r = client.get(path, headers=headers, buffered=False)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "text/event-stream" and r.headers["Cache-Control"].startswith("no-cache")
    return SSEReader(r.response)


def stored_call(services, session_id: str):
    """The call row itself, for when no agent may look at the call any more (e.g. after a hand-over)."""
    from app.models import Call

    with services.db.reading() as s:
        return s.get(Call, session_id)


def run_tasks(services, *, after_s: float = 0.0, kinds: frozenset[str] | None = None) -> int:
    """Run every task due now (or `after_s` seconds from now: timers fire early; only timers of
    `kinds` if given), as a worker would, including the follow-ups they enqueue. Returns how many ran."""
    from datetime import timedelta

    from app.models import utcnow
    from app.worker import Worker

    return Worker(services, hold_audio=False).run_due(utcnow() + timedelta(seconds=after_s), kinds=kinds)
