"""The supervisor's floor (GET /api/supervisor/floor) and its stream (GET /api/supervisor/events):
the queue, live calls in every state of a transfer, agents and their day, from the database;
pushed when it changes; only for supervisors."""
from __future__ import annotations

import queue
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from app import floor_sse
from tests.support import AgentClient, SSEReader, open_sse, start_call, start_transfer
from tests.telephony import dial_b, phone_b_takes_over, phone_call_with_context


@pytest.fixture
def supervisor(make_agent):
    return make_agent("sue", "Sue Super", role="supervisor")


def floor(sue: AgentClient, since: datetime | None = None) -> dict:
    path = "/api/supervisor/floor" + (f"?since={quote(since.isoformat())}" if since else "")
    r = sue.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json


def only_call(view: dict) -> dict:
    [call] = view["calls"]
    return call


def agent_row(view: dict, agent_id: str) -> dict:
    [row] = [a for a in view["agents"] if a["agent_id"] == agent_id]
    return row


def test_a_supervisor_signs_in_away_so_no_caller_is_routed_to_them(client, supervisor, make_agent):
    assert supervisor.get("/api/me").json["agent"]["presence"] == "away"
    call = start_call(client, None)
    assert call["agent_id"] is None  # queued: the only one signed in is the supervisor
    # An agent signing in on the supervisor page (stay_away) is not given the caller either...
    services = client.application.extensions["wt"]
    services.agents.add("alice", "Alice", "pw-alice-123456")
    page = client.application.test_client()
    r = page.post("/api/login", json={"agent_id": "alice", "password": "pw-alice-123456", "stay_away": True})
    assert r.status_code == 200 and page.get("/api/me").json["agent"]["presence"] == "away"
    assert floor(supervisor)["queue"]["waiting"][0]["session_id"] == call["session_id"]
    # ...while signing in on the console makes them available, as always, and routes it.
    bob = make_agent("bob")
    assert bob.get("/api/me").json["agent"]["presence"] == "available"
    assert floor(supervisor)["queue"]["waiting"] == []


def test_the_floor_follows_a_call_through_a_whole_transfer(client, supervisor, make_agent, services):
    view = floor(supervisor)
    assert view["queue"] == {"waiting": [], "longest_wait_since": None, "missed": 0} and view["calls"] == []

    call = start_call(client, None, name="Wendy Web")
    sid = call["session_id"]
    view = floor(supervisor)
    [waiting] = view["queue"]["waiting"]
    assert waiting["session_id"] == sid and waiting["customer_name"] == "Wendy Web" and waiting["channel"] == "web"
    assert not waiting["requeued"] and view["queue"]["longest_wait_since"] == waiting["waiting_since"]

    a = make_agent("alice", "Alice Archer")  # signing in routes the waiting call to her
    view = floor(supervisor)
    assert view["queue"]["waiting"] == []
    row = only_call(view)
    assert (row["state"], row["agent_name"], row["coach"]["monitor"]) == ("ringing", "Alice Archer", False)
    ringing_since = row["state_since"]

    assert a.post("/api/token", {"session_id": sid}).status_code == 200
    row = only_call(floor(supervisor))
    assert row["state"] == "talking" and row["state_label"] == "Talking" and row["state_since"] >= ringing_since
    assert row["coach"] == {"monitor": True, "whisper": True, "barge": True, "note": None}
    assert agent_row(floor(supervisor), "alice")["current_call"] == sid

    make_agent("bob", "Bob Brown")
    t = start_transfer(a, call, "bob")
    row = only_call(floor(supervisor))
    assert row["state"] == "on_hold" and row["consult"] == {"transfer_id": t["id"], "kind": "agent", "with": "Bob Brown", "stage": "ringing"}

    b = AgentClient(a.client.application.test_client(), "bob", "pw-bob-123456")
    b.login()
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    row = only_call(floor(supervisor))
    assert row["state"] == "consult" and row["consult"]["stage"] == "briefing"
    briefing_since = row["state_since"]

    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    view = floor(supervisor)
    row = only_call(view)
    assert (row["state"], row["agent_id"], row["agent_name"], row["consult"]) == ("transferred", "bob", "Bob Brown", None)
    assert row["state_since"] >= briefing_since
    alice, bob = agent_row(view, "alice"), agent_row(view, "bob")
    assert (alice["calls_today"], alice["transfers_out_today"], alice["transfers_in_today"]) == (1, 1, 0)
    assert (bob["calls_today"], bob["transfers_out_today"], bob["transfers_in_today"]) == (1, 0, 1)
    assert agent_row(view, "sue")["role"] == "supervisor"

    assert b.post("/api/end-call", {"session_id": sid}).status_code == 200
    assert floor(supervisor)["calls"] == []


def test_today_starts_where_the_page_says(client, supervisor, make_agent):
    a = make_agent("alice")
    call = start_call(client, a)
    assert a.post("/api/end-call", {"session_id": call["session_id"]}).status_code == 200
    assert agent_row(floor(supervisor, datetime.now(UTC) - timedelta(hours=1)), "alice")["calls_today"] == 1
    # A "today" that began after the call: it is yesterday's.
    assert agent_row(floor(supervisor, datetime.now(UTC)), "alice")["calls_today"] == 0


def test_a_call_that_missed_its_agent_is_counted_and_waits_again(client, supervisor, make_agent, tasks):
    make_agent("alice")
    call = start_call(client, None)
    assert call["agent_id"] == "alice"
    tasks(after_s=31)  # Alice never joined: set away, the call back in the queue
    view = floor(supervisor)
    assert view["queue"]["missed"] == 1
    [waiting] = view["queue"]["waiting"]
    assert waiting["session_id"] == call["session_id"] and waiting["requeued"]


@pytest.mark.telephony
def test_no_whisper_is_offered_for_a_phone_agent_b(sim, make_agent, services, tasks, supervisor):
    a = make_agent("alice", "Alice Archer")
    caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    row = only_call(floor(supervisor))
    # The caller's name is made from their number; the floor keeps only its last four digits.
    assert call.caller_number and call.caller_number in call.customer_name
    assert call.caller_number not in str(floor(supervisor)) and row["customer_name"].endswith(call.caller_number[-4:])
    assert row["state"] == "on_hold" and row["consult"]["kind"] == "phone"
    assert row["consult"]["with"].startswith("Phone ••") and len(row["consult"]["with"]) == len("Phone ••1234")
    phone_b_takes_over(sim, a, call.id, leg, body["transfer"]["id"])
    row = only_call(floor(supervisor))
    assert row["state"] == "transferred" and row["agent_on_phone"]
    assert row["coach"]["whisper"] is False and row["coach"]["monitor"] and row["coach"]["barge"]
    assert "whisper is not available" in row["coach"]["note"]


# -- the stream ------------------------------------------------------------------------------------
def _open(sue: AgentClient) -> SSEReader:
    return open_sse(sue.client, "/api/supervisor/events")


def _floor_frame(stream: SSEReader, timeout: float = 5.0) -> dict:
    item = stream.next(timeout)
    assert item["event"] == "floor", item
    return item["data"]


def test_the_stream_pushes_the_floor_when_it_changes_and_only_then(client, supervisor, make_agent):
    a = make_agent("alice")
    stream = _open(supervisor)
    assert _floor_frame(stream)["calls"] == []
    with pytest.raises(queue.Empty):
        stream.next(0.6)  # nothing changed: nothing sent
    call = start_call(client, a)
    seen = _floor_frame(stream)
    while not seen["calls"] or seen["calls"][0]["state"] != "talking":
        seen = _floor_frame(stream)
    assert seen["calls"][0]["session_id"] == call["session_id"]
    assert a.post("/api/end-call", {"session_id": call["session_id"]}).status_code == 200
    while seen["calls"]:
        seen = _floor_frame(stream)


def test_the_stream_wakes_on_events_not_only_on_its_timer(make_app, monkeypatch):
    """With the periodic re-read and the heartbeat far away, a change still arrives at once: the
    stream is woken by the event written with it."""
    monkeypatch.setattr(floor_sse, "FLOOR_REFRESH_S", 60.0)
    application = make_app(SSE_HEARTBEAT_S=60.0)
    application.extensions["wt"].agents.add("sue", "Sue", "pw-sue-123456", role="supervisor")
    sue = AgentClient(application.test_client(), "sue", "pw-sue-123456")
    sue.login()
    stream = _open(sue)
    assert _floor_frame(stream)["queue"]["waiting"] == []
    call = start_call(application.test_client(), None)
    assert [w["session_id"] for w in _floor_frame(stream, timeout=5.0)["queue"]["waiting"]] == [call["session_id"]]


def test_an_account_made_an_agent_again_loses_the_floor_at_once(supervisor, services):
    stream = _open(supervisor)
    _floor_frame(stream)
    services.agents.set_role("sue", "agent")
    ended = stream.wait_for("session_ended")
    assert ended["data"] == {"reason": "not_supervisor"}
    assert supervisor.get("/api/supervisor/floor").status_code == 403


def test_the_stream_ends_when_the_supervisor_signs_out(supervisor):
    stream = _open(supervisor)
    _floor_frame(stream)
    assert supervisor.post("/api/logout").status_code == 200
    assert stream.wait_for("session_ended")["event"] == "session_ended"
    assert stream.next()["event"] == "__closed__"


def test_the_stream_counts_as_one_of_the_supervisors_streams(supervisor, services):
    per_session = services.settings.SSE_STREAMS_PER_SESSION
    first = _open(supervisor)
    _floor_frame(first)
    for _ in range(per_session):
        _floor_frame(_open(supervisor))
    # The oldest of the login's streams was closed for the newest, and told not to come back.
    assert first.wait_for("stream_replaced")["event"] == "stream_replaced"


# -- who may ---------------------------------------------------------------------------------------
def test_agents_and_strangers_get_no_floor(client, make_agent):
    alice = make_agent("alice")
    for path in ("/api/supervisor/floor", "/api/supervisor/events"):
        r = alice.get(path)
        assert r.status_code == 403 and r.json["error"]["code"] == "supervisor_only", (path, r.json)
        assert client.get(path).status_code == 401


@pytest.mark.parametrize("since, why", [
    ("", "empty"),
    ("yesterday", "ISO 8601"),
    ("2026-12-02T00:00:00", "UTC offset"),
    ("2000-01-01T00:00:00Z", "48 hours"),
    ("2999-01-01T00:00:00+00:00", "48 hours"),
])
def test_a_bad_since_is_a_clear_error(supervisor, since, why):
    r = supervisor.get(f"/api/supervisor/floor?since={quote(since)}")
    assert r.status_code == 422 and why in r.json["error"]["message"], r.json
    r = supervisor.get("/api/supervisor/floor?sinse=x")
    assert r.status_code == 422 and "sinse" in r.json["error"]["message"]


def test_migration_11_fills_in_the_time_in_state_of_existing_rows_and_adds_its_indexes(client, make_agent, services):
    from sqlalchemy import delete, inspect, text

    from app.db import migrate
    from app.models import Call, SchemaMigration

    a = make_agent("alice")
    call = start_call(client, a)
    with services.db.transaction() as s:  # as a database from before migration 11 has them
        s.execute(text("UPDATE calls SET status_changed_at = NULL"))
        s.execute(text("UPDATE transfers SET status_changed_at = NULL"))
        for index in ("ix_calls_created_at", "ix_transfers_requested_at", "ix_events_type_created_at"):
            s.execute(text(f"DROP INDEX {index}"))
        s.execute(delete(SchemaMigration).where(SchemaMigration.version == 11))
    assert migrate(services.db) == ["11: calls and transfers: status_changed_at; indexes for reads by period"]
    with services.db.reading() as s:
        row = s.get(Call, call["session_id"])
        assert row.status_changed_at == row.answered_at  # its newest recorded moment
    inspector = inspect(services.db.engine)
    names = {i["name"] for table in ("calls", "transfers", "events") for i in inspector.get_indexes(table)}
    assert {"ix_calls_created_at", "ix_transfers_requested_at", "ix_events_type_created_at"} <= names
    assert migrate(services.db) == []
