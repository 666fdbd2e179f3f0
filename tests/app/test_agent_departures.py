"""An agent whose browser drops out of their call is taken out after a grace period — never on a
mere page refresh, and never while LiveKit still sees them."""
from __future__ import annotations

from app.models import Call
from tests.livekit_webhooks import join, leave, row, send
from tests.support import start_call, start_transfer, stored_call

LEFT = "agent left; waiting for a reconnect"


def test_a_dropped_agent_is_replaced_after_the_grace_period(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    make_agent("bob")  # free, so the requeued caller goes to Bob
    alice = join(livekit_double, room, "agent-alice")
    send(client, livekit_double, "participant_joined", room=room, participant=alice)
    leave(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_connection_aborted", room=room, participant=alice) == LEFT
    tasks(after_s=19)  # still within the grace period
    assert stored_call(services, sid).agent_id == "alice"
    tasks(after_s=21)
    stored = stored_call(services, sid)
    assert stored.agent_id == "bob" and stored.status == "ringing"  # the caller went straight to Bob
    assert stored.requeued_at is not None  # and hears hold audio until Bob answers
    assert a.get("/api/me").json["agent"]["busy"] is False


def test_a_page_refresh_is_not_a_departure(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    alice = join(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_left", room=room, participant=alice) == LEFT
    send(client, livekit_double, "participant_joined", room=room, participant=alice)
    assert row(services, Call, sid).owner_left_at is None  # the rejoin cleared the departure
    tasks(after_s=60)
    assert stored_call(services, sid).agent_id == "alice"


def test_livekit_seeing_the_agent_wins_over_a_lost_webhook(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    join(livekit_double, room, f"customer-{sid}")
    alice = join(livekit_double, room, "agent-alice")  # still in the room as far as LiveKit knows
    assert send(client, livekit_double, "participant_left", room=room, participant=alice) == LEFT
    tasks(after_s=60)
    assert row(services, Call, sid).owner_left_at is None and stored_call(services, sid).agent_id == "alice"


def test_agent_a_moving_to_the_consult_is_not_leaving_but_dropping_out_of_it_is(client, make_agent, livekit_double, services, tasks):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    t = start_transfer(a, call, "bob")
    alice = join(livekit_double, room, "agent-alice")
    leave(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_left", room=room, participant=alice) == "agent a moved to the consult"
    assert row(services, Call, sid).owner_left_at is None
    b.post("/api/accept-transfer", {"transfer_id": t["id"]})
    in_consult = join(livekit_double, t["transfer_room"], "agent-alice")
    send(client, livekit_double, "participant_joined", room=t["transfer_room"], participant=in_consult)
    leave(livekit_double, t["transfer_room"], "agent-alice")
    assert send(client, livekit_double, "participant_left", room=t["transfer_room"], participant=in_consult) == LEFT
    tasks(after_s=21)
    # Bob was already briefed: he has the customer now.
    stored = stored_call(services, sid)
    assert stored.agent_id == "bob" and stored.status == "transferred"
    assert [n["payload"]["outcome"] for n in b.notifications() if n["type"] == "transfer_failed"] == ["agent_a_left"]
