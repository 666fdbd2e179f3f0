"""`transfers.notified_at` (migration 10): when Agent B was first told of a transfer, recorded where
`wt_transfer_notify_seconds` is observed: the transfer_requested frame written to one of Agent B's
event streams (app.sse), or Agent B's phone call placed with Twilio (phone_transfers.dial)."""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import delete, text
from sqlalchemy.exc import OperationalError

import app.sse
from app.db import migrate
from app.models import SchemaMigration, Transfer, utcnow
from app.repo import mark_notified
from tests.support import AgentClient, SSEReader, open_sse, start_call, start_transfer
from tests.telephony import dial_b, phone_call_with_context

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app: phone transfers too


def _open(agent: AgentClient) -> SSEReader:
    stream = open_sse(agent.client, "/api/events")
    stream.wait_for("ready")
    return stream


def _row(services, transfer_id: str) -> Transfer:
    with services.db.reading() as s:
        return s.get(Transfer, transfer_id)


def _notified_at(services, transfer_id: str, timeout: float = 5.0):
    """The stream records it after the frame was taken, on the stream's thread: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        row = _row(services, transfer_id)
        if row.notified_at is not None or time.monotonic() > deadline:
            return row.notified_at
        time.sleep(0.02)


def test_an_agent_transfer_is_notified_when_the_frame_reaches_agent_b(client, make_agent, services):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).status_code == 200

    stream = _open(b)
    before = utcnow()
    t2 = start_transfer(a, call, "bob")
    assert stream.wait_for("transfer_requested")["data"]["transfer_id"] == t2["id"]
    notified = _notified_at(services, t2["id"])
    assert notified is not None and before <= notified <= utcnow()
    assert _row(services, t2["id"]).requested_at <= notified

    # Another tab replaying the backlog changes nothing: the first telling is the one kept.
    replay = SSEReader(b.client.get("/api/events", headers={"Last-Event-ID": "0"}, buffered=False).response)
    assert replay.wait_for("transfer_requested")["data"]["transfer_id"] in (t["id"], t2["id"])
    replay.wait_for("ready")
    assert _row(services, t2["id"]).notified_at == notified
    # The cancelled one was never read while it rang: its replay now is not a notification.
    assert _row(services, t["id"]).notified_at is None


def test_a_team_transfer_counts_the_first_member_stream(client, make_agent, services):
    a, _bob, carol = make_agent("alice"), make_agent("bob"), make_agent("carol")
    services.teams.add("billing", "Billing", ())
    for member in ("bob", "carol"):
        services.teams.set_agent_teams(member, ("billing",))
    call = start_call(client, a)
    stream = _open(carol)  # bob has no stream open: carol's is the first (and only) to be told
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_team": "billing"})
    assert r.status_code == 201, r.get_data(as_text=True)
    tid = r.json["transfer"]["id"]
    assert stream.wait_for("transfer_requested")["data"]["transfer_id"] == tid
    assert _notified_at(services, tid) is not None


def test_a_database_failing_to_record_it_does_not_break_the_stream(client, make_agent, services, monkeypatch, caplog):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)

    def down(*_args, **_kwargs):
        raise OperationalError("UPDATE transfers", {}, Exception("connection refused"))

    monkeypatch.setattr(app.sse, "mark_notified", down)
    stream = _open(b)
    with caplog.at_level(logging.WARNING, logger="app.sse"):
        t = start_transfer(a, call, "bob")
        assert stream.wait_for("transfer_requested")["data"]["transfer_id"] == t["id"]
        # The stream goes on: the next event still arrives.
        assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).status_code == 200
        assert stream.wait_for("transfer_cancelled")["data"]["transfer_id"] == t["id"]
    assert any("could not record when transfer" in r.getMessage() for r in caplog.records)


def test_a_phone_transfer_is_notified_when_the_call_is_placed(sim, make_agent, services):
    a = make_agent("alice")
    _caller, call = phone_call_with_context(sim, a, services)
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": "+14155550199"})
    assert r.status_code == 201, r.get_data(as_text=True)
    tid = r.json["transfer"]["id"]
    assert _row(services, tid).notified_at is None  # the worker has not dialled yet
    assert a.post("/api/cancel-transfer", {"transfer_id": tid}).status_code == 200

    before = utcnow()
    body, _leg = dial_b(sim, a, call.id)  # initiate, then the worker places the call
    row = _row(services, body["transfer"]["id"])
    assert row.twilio_call_sid is not None and row.notified_at is not None
    assert before <= row.notified_at <= utcnow() and row.requested_at <= row.notified_at


def test_a_failed_dial_leaves_it_unset(sim, make_agent, services, tasks):
    a = make_agent("alice")
    _caller, call = phone_call_with_context(sim, a, services)
    sim.fail_next_create(400, 21211, "The 'To' number is not a valid phone number.")
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": "+14155550199"})
    assert r.status_code == 201, r.get_data(as_text=True)
    tasks()
    row = _row(services, r.json["transfer"]["id"])
    assert row.status == "failed" and row.notified_at is None


def test_it_is_set_once(make_agent, client, services):
    a, _b = make_agent("alice"), make_agent("bob")
    t = start_transfer(a, start_call(client, a), "bob")
    first, later = utcnow(), utcnow()
    with services.db.transaction() as s:
        assert mark_notified(s, t["id"], first) is True
    with services.db.transaction() as s:
        assert mark_notified(s, t["id"], later) is False
    assert _row(services, t["id"]).notified_at == first


def test_migration_10_adds_the_column(make_agent, client, services):
    a, _b = make_agent("alice"), make_agent("bob")
    t = start_transfer(a, start_call(client, a), "bob")
    with services.db.transaction() as s:
        # As a database from before step 10 (step 1 builds the current models, so undo that).
        s.execute(text("ALTER TABLE transfers DROP COLUMN notified_at"))
        s.execute(delete(SchemaMigration).where(SchemaMigration.version == 10))
    assert migrate(services.db) == ["10: transfers.notified_at"]
    assert migrate(services.db) == []
    row = _row(services, t["id"])
    assert row.status == "ringing" and row.notified_at is None
