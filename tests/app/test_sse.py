"""Server-Sent Events: push delivery, resume with Last-Event-ID, delivery across workers, logout."""
from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import AgentClient, SSEReader, open_sse, start_call, start_transfer


def _open(agent: AgentClient, **headers) -> SSEReader:
    return open_sse(agent.client, "/api/events", **headers)


def test_agent_b_gets_transfer_requested_pushed(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    stream = _open(b)
    ready = stream.wait_for("ready")
    assert int(ready["id"]) >= 0
    t = start_transfer(a, call, "bob")
    event = stream.wait_for("transfer_requested")
    assert event["data"]["transfer_id"] == t["id"] and event["data"]["session_id"] == call["session_id"]
    assert event["data"]["summary"]["text"] and int(event["id"]) > int(ready["id"])
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    a_stream = _open(a, **{"Last-Event-ID": event["id"]})
    accepted = a_stream.wait_for("transfer_accepted")
    assert accepted["data"]["transfer_id"] == t["id"]


def test_resume_from_last_event_id_replays_only_what_was_missed(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    since = max(n["id"] for n in b.notifications()) if b.notifications() else 0
    t1 = start_transfer(a, call, "bob")
    a.post("/api/cancel-transfer", {"transfer_id": t1["id"]})
    t2 = start_transfer(a, call, "bob")
    stream = _open(b, **{"Last-Event-ID": str(since)})
    got = [stream.next() for _ in range(3)]
    assert [(e["event"], e["data"]["transfer_id"]) for e in got] == [
        ("transfer_requested", t1["id"]),
        ("transfer_cancelled", t1["id"]),
        ("transfer_requested", t2["id"]),
    ]
    assert stream.next()["event"] == "ready"
    assert [int(e["id"]) for e in got] == sorted(int(e["id"]) for e in got)


def test_events_written_by_another_worker_are_delivered(make_app, client, make_agent):
    """A second app on the same database stands in for another gunicorn worker or instance."""
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    stream = _open(b)
    stream.wait_for("ready")
    other = make_app()
    other_alice = AgentClient(other.test_client(), "alice", a.password)
    other_alice.login()
    t = start_transfer(other_alice, call, "bob")
    event = stream.wait_for("transfer_requested", timeout=5)
    assert event["data"]["transfer_id"] == t["id"]


def test_heartbeats_and_logout_end_the_stream(make_agent):
    b = make_agent("bob")
    stream = _open(b)
    stream.wait_for("ready")
    b.post("/api/logout")
    ended = stream.wait_for("session_ended", timeout=5)
    assert ended["event"] == "session_ended"
    assert stream.next()["event"] == "__closed__"


def test_polling_route_sees_the_same_events_in_order(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    items = b.notifications()
    assert [n["type"] for n in items] == ["transfer_requested"]
    assert items[0]["payload"]["transfer_id"] == t["id"]
    assert b.notifications(since=items[-1]["id"]) == []
    a.post("/api/cancel-transfer", {"transfer_id": t["id"]})
    assert [n["type"] for n in b.notifications(since=items[-1]["id"])] == ["transfer_cancelled"]


@pytest.mark.parametrize("bad", ["abc", "-5", "1.5"])
def test_bad_since_is_rejected(make_agent, bad):
    b = make_agent("bob")
    r = b.get(f"/api/events?since={bad}")
    assert r.status_code == 422


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_notify_wakes_other_workers_without_waiting_for_the_poll(make_app, make_agent):
    """With a 10 s poll interval, only LISTEN/NOTIFY can deliver another worker's event quickly."""
    app = make_app(EVENT_POLL_INTERVAL_S=10.0)
    b = AgentClient(app.test_client(), "bob", "pw-bob-123456")
    app.extensions["wt"].agents.add("bob", "Bob", "pw-bob-123456")
    b.login()
    stream = _open(b)
    stream.wait_for("ready")
    other = make_app(EVENT_POLL_INTERVAL_S=10.0)
    other_alice = AgentClient(other.test_client(), "alice", "pw-alice-123456")
    other.extensions["wt"].agents.add("alice", "Alice", "pw-alice-123456")
    other_alice.login()
    call = start_call(other.test_client(), other_alice)
    started = time.monotonic()
    t = start_transfer(other_alice, call, "bob")
    event = stream.wait_for("transfer_requested", timeout=8)
    assert event["data"]["transfer_id"] == t["id"]
    assert time.monotonic() - started < 2.0


def test_a_client_too_slow_to_keep_up_is_disconnected_to_catch_up_from_the_database(make_agent, services, monkeypatch):
    from app import event_dispatcher as events

    monkeypatch.setattr(events.Subscription, "__init__", _small_queue_init(events.Subscription.__init__))
    _alice, b = make_agent("alice"), make_agent("bob")
    r = b.client.get("/api/events", buffered=False)
    chunks = iter(r.response)
    sub = next(iter(services.dispatcher._subs["bob"]))
    for i in range(3):  # more than the queue holds, before the client reads anything
        sub.push(events.Delivered(i + 1, "bob", None, "context_added", {"n": i}, datetime.now(UTC)))
    body = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    assert "reconnect to catch up" in body  # the stream ended; EventSource reconnects with Last-Event-ID


def _small_queue_init(original):
    def init(self, audience):
        original(self, audience)
        self.queue = deque(maxlen=2)

    return init


def test_old_events_are_pruned(client, make_agent, services):
    from sqlalchemy import func, select, update

    from app.models import Event
    from app.services.retention import prune_events

    start_call(client, make_agent("alice"))
    assert prune_events(services.db, 90) == 0  # nothing old yet
    with services.db.transaction() as s:
        s.execute(update(Event).values(created_at=datetime.now(UTC) - timedelta(days=91)))
    assert prune_events(services.db, 90) > 0
    with services.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 0
