"""Every way a transfer can end, each with a reason Agent A is told about."""
from __future__ import annotations

from tests.livekit_webhooks import send
from tests.support import call_status, start_call, start_transfer


def _last(agent, type_):
    items = [n for n in agent.notifications() if n["type"] == type_]
    assert items, (type_, agent.types())
    return items[-1]["payload"]


def test_decline_returns_the_customer_to_agent_a(client, make_agent, livekit_double, tasks):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    r = b.post("/api/decline-transfer", {"transfer_id": t["id"], "reason": "in a meeting"})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "declined"
    assert t["transfer_room"] in livekit_double.rooms  # the worker deletes it, after the answer
    tasks()
    payload = _last(a, "transfer_declined")
    assert payload["outcome"] == "declined" and "in a meeting" in payload["reason"]
    assert call_status(a, call["session_id"]) == "active"
    assert t["transfer_room"] not in livekit_double.rooms
    assert a.post("/api/token", {"session_id": call["session_id"]}).json["room_name"] == call["room_name"]


def test_cancel_while_ringing_and_while_briefing(client, make_agent, livekit_double, tasks):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    t1 = start_transfer(a, call, "bob")
    assert a.post("/api/cancel-transfer", {"transfer_id": t1["id"]}).json["transfer"]["status"] == "cancelled"
    assert _last(b, "transfer_cancelled")["transfer_id"] == t1["id"]
    assert call_status(a, sid) == "active"

    t2 = start_transfer(a, call, "bob")  # retried with the same context
    assert t2["id"] != t1["id"] and t2["summary"]["text"]
    assert b.post("/api/accept-transfer", {"transfer_id": t2["id"]}).status_code == 200
    assert b.post("/api/token", {"session_id": sid}).json["room_name"] == t2["transfer_room"]
    assert a.post("/api/cancel-transfer", {"transfer_id": t2["id"]}).status_code == 200
    assert _last(b, "transfer_cancelled")["transfer_id"] == t2["id"]
    assert call_status(a, sid) == "active"
    # Agent B is free again and no longer in the call; Agent A is back with the customer.
    assert b.post("/api/token", {"session_id": sid}).status_code == 403
    assert a.post("/api/token", {"session_id": sid}).json["room_name"] == call["room_name"]
    assert b.get("/api/me").json["agent"]["busy"] is False
    tasks()
    assert t2["transfer_room"] not in livekit_double.rooms


def test_unanswered_transfer_times_out(client, make_agent, tasks, livekit_double):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    me = livekit_double.join(call["room_name"], f"customer-{call['session_id']}")
    send(client, livekit_double, "participant_joined", room=call["room_name"], participant=me)
    t = start_transfer(a, call, "bob")
    tasks(after_s=29)
    assert "transfer_failed" not in a.types()  # not yet
    tasks(after_s=31)
    assert tasks(after_s=60) == 0  # the timer has gone: nothing more to do
    payload = _last(a, "transfer_failed")
    assert payload["outcome"] == "no_answer" and "30 seconds" in payload["reason"]
    assert _last(b, "transfer_failed")["transfer_id"] == t["id"]
    assert call_status(a, call["session_id"]) == "active"
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 409


def test_caller_hangs_up_while_ringing_and_while_briefing(client, make_agent, livekit_double, tasks):
    for phase in ("ringing", "briefing"):
        a, b = make_agent(f"a-{phase}"), make_agent(f"b-{phase}")
        call = start_call(client, a)
        t = start_transfer(a, call, b.id)
        if phase == "briefing":
            assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
        r = client.post("/api/end-call", json={"session_id": call["session_id"]}, headers={"X-Customer-Key": call["customer_key"]})
        assert r.status_code == 200 and r.json["call"]["status"] == "completed"
        for agent in (a, b):
            payload = _last(agent, "transfer_failed")
            assert payload["outcome"] == "caller_left" and payload["transfer_id"] == t["id"]
            assert _last(agent, "call_ended")["status"] == "completed"
            assert agent.get("/api/me").json["agent"]["busy"] is False
        tasks()
        assert call["room_name"] not in livekit_double.rooms and t["transfer_room"] not in livekit_double.rooms
        a.post("/api/logout")
        b.post("/api/logout")


def test_agent_a_leaving_during_briefing_hands_the_customer_to_b(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    t = start_transfer(a, call, "bob")
    b.post("/api/accept-transfer", {"transfer_id": t["id"]})
    r = a.post("/api/agent-exit-room", {"session_id": sid})
    assert r.status_code == 200 and r.json["outcome"] == "handed_over"
    payload = _last(b, "transfer_failed")
    assert payload["outcome"] == "agent_a_left" and payload["handed_over"] is True
    assert call_status(b, sid) == "transferred"
    assert b.post("/api/token", {"session_id": sid}).json["room_name"] == call["room_name"]
    assert a.post("/api/token", {"session_id": sid}).status_code == 403


def test_agent_a_leaving_before_b_answers_requeues_the_customer(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    t = start_transfer(a, call, "bob")
    r = a.post("/api/agent-exit-room", {"session_id": sid})
    assert r.json["outcome"] == "requeued"
    assert _last(b, "transfer_failed")["outcome"] == "agent_a_left"
    # Bob is the only free agent left, so the requeued call goes straight to him.
    assigned = _last(b, "call_assigned")
    assert assigned["session_id"] == sid
    assert call_status(b, sid) == "ringing"
    assert a.get(f"/api/calls/{sid}").status_code == 403  # no longer hers: she does not read on
    assert a.post("/api/token", {"session_id": sid}).status_code == 403
    assert t["id"]


def test_a_call_can_be_transferred_again(client, make_agent):
    a, b, c = make_agent("alice"), make_agent("bob"), make_agent("carol")
    call = start_call(client, a)
    sid = call["session_id"]
    t1 = start_transfer(a, call, "bob")
    b.post("/api/accept-transfer", {"transfer_id": t1["id"]})
    a.post("/api/complete-transfer", {"transfer_id": t1["id"]})
    a.post("/api/agent-exit-room", {"session_id": sid})
    b.post("/api/add-context", {"session_id": sid, "text": "Bob confirmed the refund needs a supervisor."})
    t2 = start_transfer(b, call, "carol")
    assert "supervisor" in t2["summary"]["text"]
    c.post("/api/accept-transfer", {"transfer_id": t2["id"]})
    assert b.post("/api/complete-transfer", {"transfer_id": t2["id"]}).status_code == 200
    detail = c.get(f"/api/calls/{sid}").json["call"]
    assert detail["agent_id"] == "carol" and [t["status"] for t in detail["transfers"]] == ["completed", "completed"]


def test_a_new_caller_does_not_go_to_the_agent_a_transfer_is_ringing_for(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    other = start_call(client, None, "Second Caller")
    assert other["agent_id"] is None  # queued rather than given to Bob, who is about to take Jane
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    b.post("/api/decline-transfer", {"transfer_id": t["id"]})
    assert [n["payload"]["session_id"] for n in b.notifications() if n["type"] == "call_assigned"] == [other["session_id"]]


def test_agent_b_busy_on_another_call_cannot_accept(client, make_agent, services):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    other = start_call(client, b, "Second Caller")  # Bob takes a call first...
    b.post("/api/presence", {"status": "available"})
    with services.db.transaction() as s:  # ...and is offered a transfer anyway (e.g. a stale directory)
        from sqlalchemy import update

        from app.models import Agent

        s.execute(update(Agent).where(Agent.id == "bob").values(active_call_id=None))
    t = start_transfer(a, call, "bob")
    with services.db.transaction() as s:
        s.execute(update(Agent).where(Agent.id == "bob").values(active_call_id=other["session_id"]))
    r = b.post("/api/accept-transfer", {"transfer_id": t["id"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "agent_busy"


def test_summary_keeps_context_and_redacts_cards(client, make_agent):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a, "Maria Lopez")
    for text in (
        "Customer's card 4111 1111 1111 1111 was declined at checkout.",
        "Account number AC-99812, invoice #INV-2231 for $120.50.",
        "Already tried a second card, same error.",
        "She needs the order released today.",
    ):
        a.post("/api/add-context", {"session_id": call["session_id"], "text": text})
    t = start_transfer(a, call, "bob")
    text = t["summary"]["text"]
    assert "Maria Lopez" in text and "AC-99812" in text and "$120.50" in text and "INV-2231" in text
    assert "4111 1111 1111 1111" not in text and "card ending 1111" in text
    requested = _last(b, "transfer_requested")
    assert "4111 1111 1111 1111" not in str(requested)
    detail = a.get(f"/api/calls/{call['session_id']}").json["call"]
    assert all("4111 1111" not in e["text"] for e in detail["context"])


def test_the_server_takes_agent_a_out_of_the_customer_room_for_the_consult(client, make_agent, livekit_double, tasks):
    a, _bob = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    livekit_double.join(call["room_name"], "agent-alice")  # Alice's browser is in the call
    t = start_transfer(a, call, "bob")
    tasks()
    assert "agent-alice" not in livekit_double.rooms[call["room_name"]].participants  # held: she cannot be heard
    a.post("/api/cancel-transfer", {"transfer_id": t["id"]})
    assert a.post("/api/token", {"session_id": call["session_id"]}).json["room_name"] == call["room_name"]  # and back
