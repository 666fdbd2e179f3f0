"""Call lifecycle: queueing and assignment, presence, customers, listing, LiveKit failures."""
from __future__ import annotations

import socket

from sqlalchemy import func, select

from app import create_app
from app.models import Call, ContextEntry, Event
from tests.support import call_status, start_call, stored_call
from tests.telephony import agent_on


def test_calls_queue_until_an_agent_is_available_then_go_oldest_first(client, make_agent):
    first = start_call(client, None, "First Caller")
    second = start_call(client, None, "Second Caller")
    assert first["agent_id"] is None and first["status"] == "queued"
    a = make_agent("alice")  # logging in makes Alice available and drains the queue
    assigned = [n for n in a.notifications() if n["type"] == "call_assigned"]
    assert [n["payload"]["session_id"] for n in assigned] == [first["session_id"]]
    assert assigned[0]["payload"]["customer_name"] == "First Caller"
    b = make_agent("bob")
    assert [n["payload"]["session_id"] for n in b.notifications() if n["type"] == "call_assigned"] == [second["session_id"]]
    assert call_status(a, first["session_id"]) == "ringing"
    assert a.post("/api/token", {"session_id": first["session_id"]}).status_code == 200
    assert call_status(a, first["session_id"]) == "active"


def test_away_agents_get_no_calls_and_get_them_when_back(client, make_agent):
    a = make_agent("alice")
    assert a.post("/api/presence", {"status": "away"}).json["agent"]["presence"] == "away"
    call = start_call(client, None)
    assert call["agent_id"] is None
    r = a.post("/api/presence", {"status": "available"})
    assert r.status_code == 200
    assert [n["payload"]["session_id"] for n in a.notifications() if n["type"] == "call_assigned"] == [call["session_id"]]


def test_logged_out_agents_get_no_calls(client, make_agent):
    a = make_agent("alice")
    assert a.post("/api/logout").status_code == 200
    assert a.get("/api/me").status_code == 401  # the session is revoked server-side
    assert start_call(client, None)["agent_id"] is None


def test_customer_can_hang_up_while_queued_and_the_call_is_abandoned(client, make_agent, livekit_double, tasks):
    call = start_call(client, None)
    r = client.post("/api/end-call", json={"session_id": call["session_id"]}, headers={"X-Customer-Key": call["customer_key"]})
    assert r.status_code == 200 and r.json["call"]["status"] == "abandoned"
    tasks()
    assert call["room_name"] not in livekit_double.rooms
    a = make_agent("alice")
    assert "call_assigned" not in a.types()


def test_agent_ends_call_and_becomes_free_for_the_next(client, make_agent):
    a = make_agent("alice")
    first = start_call(client, a)
    waiting = start_call(client, None, "Waiting Caller")
    assert waiting["agent_id"] is None
    r = a.post("/api/end-call", {"session_id": first["session_id"]})
    assert r.status_code == 200 and r.json["call"]["status"] == "completed"
    assert a.notifications()[-1]["payload"]["session_id"] == waiting["session_id"]


def test_call_detail_has_context_summary_transfers_and_timeline(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    a.post("/api/add-context", {"session_id": sid, "text": "Printer shows error E-42."})
    a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"})
    detail = a.get(f"/api/calls/{sid}").json["call"]
    assert [e["source"] for e in detail["context"]] == ["system", "note"]
    assert detail["context"][0]["text"] == "Call started with customer Jane Doe"
    assert detail["summary"]["provider"] == "offline" and "E-42" in detail["summary"]["text"]
    assert detail["transfers"][0]["status"] == "ringing"
    types = [e["type"] for e in detail["timeline"]]
    assert types[:2] == ["call_assigned", "call_active"]
    assert types.count("transfer_requested") == 1 and "context_added" in types
    listed = a.get("/api/calls").json
    assert [c["session_id"] for c in listed["calls"]] == [sid] and listed["queued"] == 0
    assert b.get(f"/api/calls/{sid}").status_code == 200  # Bob is part of it through the transfer


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_livekit_down_means_503_and_nothing_half_written(make_app):
    dead = _dead_url()
    app = make_app(LIVEKIT_HTTP_URL=dead)
    services = app.extensions["wt"]
    r = app.test_client().post("/api/create-call", json={"customer_name": "Jane"})
    assert r.status_code == 503
    assert r.json["error"]["code"] == "livekit_unavailable" and dead in r.json["error"]["message"]
    with services.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0
        assert s.scalar(select(func.count()).select_from(ContextEntry)) == 0
        assert s.scalar(select(func.count()).select_from(Event)) == 0
    assert app.test_client().get("/api/health").json == {"status": "ok"}  # LiveKit is not the app's health
    details = agent_on(app, "alice").get("/api/health/details").json
    assert details["status"] == "ok" and details["livekit"]["status"] == "unavailable"


def test_livekit_failing_at_transfer_leaves_the_call_active(client, make_agent, livekit_double):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    livekit_double.fail_next("CreateRoom", 503, "unavailable", "overloaded")
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "bob"})
    assert r.status_code == 503 and r.json["error"]["code"] == "livekit_unavailable"
    detail = a.get(f"/api/calls/{call['session_id']}").json["call"]
    assert detail["status"] == "active" and detail["transfers"] == []
    assert "transfer_requested" not in b.types()
    # And it works once LiveKit is back.
    assert a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "bob"}).status_code == 201


def test_livekit_failing_after_room_creation_deletes_the_room(client, make_agent, livekit_double, services, monkeypatch):
    a = make_agent("alice")
    calls_before = set(livekit_double.rooms)

    def broken_assign(*args, **kwargs):
        raise RuntimeError("database went away mid-transaction")

    monkeypatch.setattr("app.services.calls.assign_in", broken_assign)
    r = client.post("/api/create-call", json={"customer_name": "Jane"})
    assert r.status_code == 500 and r.json["error"]["code"] == "internal_error"
    assert "Traceback" not in r.get_data(as_text=True)
    assert set(livekit_double.rooms) == calls_before
    with services.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0
    assert a.id == "alice"


def test_rate_limit_on_create_call(make_app):
    app = make_app(CREATE_CALL_RATE_LIMIT="2/60")
    c = app.test_client()
    codes = [c.post("/api/create-call", json={"customer_name": f"C{i}"}).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    r = c.post("/api/create-call", json={"customer_name": "again"})
    assert r.json["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) > 0


def test_health_is_terse_in_public_and_detailed_for_agents(client, make_agent):
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json == {"status": "ok"} and r.headers["Cache-Control"] == "no-store"
    assert client.get("/api/health/details").status_code == 401
    body = make_agent("alice").get("/api/health/details").json
    assert body["status"] == "ok"
    assert body["db"]["status"] == "ok" and body["db"]["missing_migrations"] == [] and body["livekit"]["status"] == "ok"
    assert body["llm"]["provider"] == "offline" and body["tasks"]["failed"] == 0
    assert body["telephony"]["configured"] is False and "TWILIO_ACCOUNT_SID" in body["telephony"]["message"]


def test_health_is_503_when_the_database_is_down(config, tmp_path):
    app = create_app(dict(config, DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/nope.db"))
    try:
        r = app.test_client().get("/api/health")
        assert r.status_code == 503 and r.json == {"status": "degraded"}
    finally:
        app.extensions["wt"].close()


def test_customer_sees_their_call_status(client, make_agent):
    a, b = make_agent("alice", "Alice Agent"), make_agent("bob")
    call = start_call(client, a)
    sid, key = call["session_id"], call["customer_key"]
    r = client.get(f"/api/calls/{sid}/status", headers={"X-Customer-Key": key})
    assert r.status_code == 200 and r.json == {"session_id": sid, "status": "active", "agent_name": "Alice Agent", "on_hold": False, "end_reason": None}
    t = a.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "bob"}).json["transfer"]
    assert client.get(f"/api/calls/{sid}/status", headers={"X-Customer-Key": key}).json["on_hold"] is True
    assert client.get(f"/api/calls/{sid}/status", headers={"X-Customer-Key": "wrong"}).status_code == 403
    assert client.get(f"/api/calls/{sid}/status").status_code == 403
    assert b.get("/api/me").json["pending_transfers"][0]["transfer_id"] == t["id"]


def test_me_tells_a_refreshed_dashboard_where_to_resume(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "bob"}).json["transfer"]
    me = b.get("/api/me").json
    pending = me["pending_transfers"]
    assert [p["transfer_id"] for p in pending] == [t["id"]]
    assert pending[0]["customer_name"] == "Jane Doe" and pending[0]["from_agent_id"] == "alice" and pending[0]["summary"]["text"]
    assert me["last_event_id"] >= max(n["id"] for n in b.notifications())
    assert a.get("/api/me").json["pending_transfers"] == []
    b.post("/api/accept-transfer", {"transfer_id": t["id"]})
    assert b.get("/api/me").json["pending_transfers"] == []


def test_an_agent_who_never_joins_is_set_away_and_the_call_moves_on(client, make_agent, services, tasks):
    a = make_agent("alice")
    call = start_call(client, None)
    assert call["agent_id"] == "alice"
    b = make_agent("bob")
    tasks(after_s=29)
    assert "call_missed" not in a.types()  # not yet
    tasks(after_s=31)
    missed = [n for n in a.notifications() if n["type"] == "call_missed"]
    assert len(missed) == 1 and "away" in missed[0]["payload"]["reason"]
    me = a.get("/api/me").json["agent"]
    assert me["presence"] == "away" and me["busy"] is False
    assert [n["payload"]["session_id"] for n in b.notifications() if n["type"] == "call_assigned"] == [call["session_id"]]
    assert call_status(b, call["session_id"]) == "ringing"
    assert stored_call(services, call["session_id"]).requeued_at is not None  # the customer hears hold audio now
    assert a.post("/api/token", {"session_id": call["session_id"]}).status_code == 403
    tasks(after_s=61)  # Bob's own 30 s run out too: the call goes back to the queue
    assert call_status_of(services, call["session_id"]) == "queued"


def test_a_joined_call_is_never_taken_away(client, make_agent, services, tasks, livekit_double):
    a = make_agent("alice")
    call = start_call(client, a)  # Alice joined: the call is active
    livekit_double.join(call["room_name"], f"customer-{call['session_id']}")  # and so is the customer
    tasks(after_s=3600)
    assert call_status(a, call["session_id"]) == "active"
    assert "call_missed" not in a.types()


def test_an_answer_timer_only_counts_for_its_own_assignment(client, make_agent, services, tasks):
    """A timer armed for an earlier assignment of the same agent (the call went round the queue
    and back) must not take the new one away early; nor one for an agent who has since joined."""
    from sqlalchemy import select

    from app.models import Agent, Call
    from app.services.routing import answer_missed

    make_agent("alice")
    call = start_call(client, None)
    b = make_agent("bob")
    sid = call["session_id"]
    first = stored_call(services, sid).assigned_at
    tasks(after_s=31)  # Alice missed it: Bob has it, just assigned
    assert not answer_missed(services.db, sid, "alice", first, 30)  # a duplicate of Alice's timer
    with services.db.reading() as s:
        assert s.scalar(select(Call.agent_id).where(Call.id == sid)) == "bob"
        assert s.scalar(select(Agent.active_call_id).where(Agent.id == "bob")) == sid
    bobs = stored_call(services, sid).assigned_at
    b.post("/api/token", {"session_id": sid})  # Bob joins before his timer runs
    assert not answer_missed(services.db, sid, "bob", bobs, 30)
    assert call_status(b, sid) == "active"


def call_status_of(services, session_id: str) -> str:
    return stored_call(services, session_id).status


def test_an_agent_whose_microphone_fails_is_set_away_and_the_caller_goes_to_the_next_agent(client, make_agent, services, tasks, livekit_double):
    a = make_agent("alice")
    call = start_call(client, None)
    b = make_agent("bob")
    sid = call["session_id"]
    r = a.post("/api/microphone-failed", {"session_id": sid, "error": "NotAllowedError: Permission denied"})
    assert r.status_code == 200 and r.json["outcome"] == "requeued"
    me = a.get("/api/me").json["agent"]
    assert me["presence"] == "away" and me["busy"] is False
    missed = [n["payload"] for n in a.notifications() if n["type"] == "call_missed"]
    assert missed and "microphone is not working" in missed[-1]["reason"] and "Permission denied" in missed[-1]["reason"]
    assert call_status(b, sid) == "ringing" and stored_call(services, sid).agent_id == "bob"
    assert stored_call(services, sid).requeued_at is not None  # the customer hears hold audio meanwhile
    # Only someone in the call can report it, and the body is checked.
    assert a.post("/api/microphone-failed", {"session_id": sid, "error": "again"}).status_code == 403
    assert b.post("/api/microphone-failed", {"session_id": sid}).status_code == 422
    assert b.post("/api/microphone-failed", {"session_id": sid, "error": "x" * 201}).status_code == 422


def test_agent_b_whose_microphone_fails_declines_the_transfer(client, make_agent, services):
    from tests.support import start_transfer

    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    r = b.post("/api/microphone-failed", {"session_id": call["session_id"], "error": "NotFoundError: no device"})
    assert r.status_code == 200 and r.json["outcome"] == "declined"
    declined = [n["payload"] for n in a.notifications() if n["type"] == "transfer_declined"][-1]
    assert declined["reason_code"] == "microphone_failed" and "no device" in declined["reason"]
    assert call_status(a, call["session_id"]) == "active"
