"""No stranded caller: whoever fails to turn up (Agent B leaving the briefing or never reaching the
customer, a web customer who never connects), the call reaches a defined outcome that is pushed
to whoever is still there; and Agent A cannot slip back into the held customer's room."""
from __future__ import annotations

from sqlalchemy import update

from app.models import Agent, Call, Transfer
from tests.livekit_webhooks import join, leave, row, send
from tests.support import start_call, start_transfer, stored_call


def _briefing(client, make_agent, livekit_double):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    join(livekit_double, call["room_name"], f"customer-{call['session_id']}")
    t = start_transfer(a, call, "bob")
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    return a, b, call, t


def _types(agent) -> list[str]:
    return [n["type"] for n in agent.notifications()]


def test_agent_b_leaving_the_briefing_is_a_decline_and_complete_then_refuses(client, make_agent, livekit_double, services, tasks):
    a, b, call, t = _briefing(client, make_agent, livekit_double)
    left = b.post("/api/agent-exit-room", {"session_id": call["session_id"]})
    assert left.status_code == 200 and left.json["outcome"] == "declined"
    done = row(services, Transfer, t["id"])
    assert done.status == "declined" and done.reason_code == "agent_b_left"
    declined = [n["payload"] for n in a.notifications() if n["type"] == "transfer_declined"]
    assert declined and declined[-1]["reason_code"] == "agent_b_left"
    r = a.post("/api/complete-transfer", {"transfer_id": t["id"]})
    assert r.status_code == 409
    stored = stored_call(services, call["session_id"])
    assert stored.agent_id == "alice" and stored.status == "active"  # Alice has her customer back
    assert a.post("/api/token", {"session_id": call["session_id"]}).json["room_name"] == call["room_name"]
    assert b.get("/api/me").json["agent"]["busy"] is False


def test_complete_rechecks_that_agent_b_still_holds_the_call(client, make_agent, livekit_double, services):
    a, b, call, t = _briefing(client, make_agent, livekit_double)
    with services.db.transaction() as s:  # Bob's slot gone by any path (taken out, released)
        s.execute(update(Agent).where(Agent.id == "bob").values(active_call_id=None))
    r = a.post("/api/complete-transfer", {"transfer_id": t["id"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "agent_b_left"
    assert row(services, Transfer, t["id"]).status == "declined"
    stored = stored_call(services, call["session_id"])
    assert stored.agent_id == "alice" and stored.status == "active"


def test_agent_b_browser_dropping_out_of_the_briefing_declines_after_the_grace(client, make_agent, livekit_double, services, tasks):
    a, b, call, t = _briefing(client, make_agent, livekit_double)
    room = t["transfer_room"]
    bob = join(livekit_double, room, "agent-bob")
    send(client, livekit_double, "participant_joined", room=room, participant=bob)
    leave(livekit_double, room, "agent-bob")
    assert "waiting for a reconnect" in send(client, livekit_double, "participant_left", room=room, participant=bob)
    tasks(after_s=15)
    assert row(services, Transfer, t["id"]).status == "briefing"  # within AGENT_RECONNECT_GRACE_S
    tasks(after_s=25)
    done = row(services, Transfer, t["id"])
    assert done.status == "declined" and done.reason_code == "agent_b_left"
    assert stored_call(services, call["session_id"]).agent_id == "alice"


def test_agent_b_refreshing_during_the_briefing_keeps_the_transfer(client, make_agent, livekit_double, services, tasks):
    a, b, call, t = _briefing(client, make_agent, livekit_double)
    room = t["transfer_room"]
    bob = join(livekit_double, room, "agent-bob")
    send(client, livekit_double, "participant_left", room=room, participant=bob)  # LiveKit still has him
    tasks(after_s=25)
    assert row(services, Transfer, t["id"]).status == "briefing"


def test_agent_b_who_never_reaches_the_customer_after_completion_loses_the_call_to_the_queue(client, make_agent, livekit_double, services, tasks):
    a, b, call, t = _briefing(client, make_agent, livekit_double)
    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    carol = make_agent("carol")  # free by the time the deadline passes
    tasks(after_s=30)
    assert stored_call(services, call["session_id"]).agent_id == "bob"  # within HANDOVER_JOIN_TIMEOUT_S
    tasks(after_s=50)
    stored = stored_call(services, call["session_id"])
    assert stored.agent_id == "carol" and stored.status == "ringing" and stored.requeued_at is not None
    missed = [n["payload"] for n in b.notifications() if n["type"] == "call_missed"]
    assert missed and missed[-1]["reason_code"] == "agent_b_never_joined"
    assert row(services, Agent, "bob").presence == "away" and row(services, Agent, "bob").active_call_id is None
    assert "call_assigned" in _types(carol) or row(services, Agent, "carol").active_call_id == call["session_id"]


def test_agent_b_arriving_in_time_or_seen_by_livekit_keeps_the_call(client, make_agent, livekit_double, services, tasks):
    a, b, call, t = _briefing(client, make_agent, livekit_double)
    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    join(livekit_double, call["room_name"], "agent-bob")  # joined, but the webhook was lost
    tasks(after_s=50)
    stored = stored_call(services, call["session_id"])
    assert stored.agent_id == "bob" and stored.status == "transferred"
    assert row(services, Transfer, t["id"]).bridged_at is not None


def test_a_web_customer_who_never_connects_ends_the_call_and_the_agent_is_told(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    call = start_call(client, a)  # Alice joined; the customer's browser never reaches LiveKit
    tasks(after_s=50)
    assert stored_call(services, call["session_id"]).status == "active"
    tasks(after_s=65)
    stored = row(services, Call, call["session_id"])
    assert stored.status == "completed" and stored.end_reason == "customer_never_joined"
    ended = [n["payload"] for n in a.notifications() if n["type"] == "call_ended"]
    assert ended and ended[-1]["reason"] == "customer_never_joined"
    assert a.get("/api/me").json["agent"]["busy"] is False
    status = client.get(f"/api/calls/{call['session_id']}/status", headers={"X-Customer-Key": call.get("customer_key", "")})
    assert status.status_code in (200, 403)


def test_a_web_customer_who_connected_keeps_the_call(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    call = start_call(client, a)
    me = join(livekit_double, call["room_name"], f"customer-{call['session_id']}")
    send(client, livekit_double, "participant_joined", room=call["room_name"], participant=me)
    tasks(after_s=120)
    assert stored_call(services, call["session_id"]).status == "active"


def test_agent_a_rejoining_the_customer_room_during_their_consult_is_evicted(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    make_agent("bob")
    call = start_call(client, a)
    room = call["room_name"]
    t = start_transfer(a, call, "bob")
    tasks()
    sneaky = join(livekit_double, room, "agent-alice")  # the token Alice got before the consult
    assert send(client, livekit_double, "participant_joined", room=room, participant=sneaky) == "participant removed: not part of this call"
    tasks()
    assert "agent-alice" not in livekit_double.rooms[room].participants
    # Once the consult is over she belongs there again.
    assert a.post("/api/cancel-transfer", {"transfer_id": t["id"]}).status_code == 200
    back = join(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_joined", room=room, participant=back) != "participant removed: not part of this call"
