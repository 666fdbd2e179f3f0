"""An agent whose browser drops out of their call is taken out after a grace period — never on a
mere page refresh, and never while LiveKit still sees them."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.models import Call, utcnow
from tests.app.test_livekit_webhook import join, leave, row, send
from tests.support import start_call, start_transfer, stored_call

LEFT = "agent left; waiting for a reconnect"


def _age(services, call_id: str, seconds: float) -> None:
    with services.db.transaction() as s:
        s.execute(update(Call).where(Call.id == call_id, Call.owner_left_at.is_not(None)).values(owner_left_at=utcnow() - timedelta(seconds=seconds)))


def test_a_dropped_agent_is_replaced_after_the_grace_period(client, make_agent, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    make_agent("bob")  # free, so the requeued caller goes to Bob
    alice = join(livekit_double, room, "agent-alice")
    send(client, livekit_double, "participant_joined", room=room, participant=alice)
    leave(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_connection_aborted", room=room, participant=alice) == LEFT
    assert services.livekit_events.departures.expire() == 0  # still within the grace period
    _age(services, sid, 21)
    assert services.livekit_events.departures.expire() == 1
    stored = stored_call(services, sid)
    assert stored.agent_id == "bob" and stored.status == "ringing"  # the caller went straight to Bob
    assert a.get("/api/me").json["agent"]["busy"] is False
    assert services.livekit_events.departures.expire() == 0


def test_a_page_refresh_is_not_a_departure(client, make_agent, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    alice = join(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_left", room=room, participant=alice) == LEFT
    send(client, livekit_double, "participant_joined", room=room, participant=alice)
    assert row(services, Call, sid).owner_left_at is None  # the rejoin cleared the departure
    assert services.livekit_events.departures.expire() == 0
    assert stored_call(services, sid).agent_id == "alice"


def test_livekit_seeing_the_agent_wins_over_a_lost_webhook(client, make_agent, livekit_double, services):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    alice = join(livekit_double, room, "agent-alice")  # still in the room as far as LiveKit knows
    assert send(client, livekit_double, "participant_left", room=room, participant=alice) == LEFT
    _age(services, sid, 60)
    assert services.livekit_events.departures.expire() == 0
    assert row(services, Call, sid).owner_left_at is None and stored_call(services, sid).agent_id == "alice"


def test_agent_a_moving_to_the_consult_is_not_leaving_but_dropping_out_of_it_is(client, make_agent, livekit_double, services):
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
    _age(services, sid, 21)
    assert services.livekit_events.departures.expire() == 1
    # Bob was already briefed: he has the customer now.
    stored = stored_call(services, sid)
    assert stored.agent_id == "bob" and stored.status == "transferred"
    assert [n["payload"]["outcome"] for n in b.notifications() if n["type"] == "transfer_failed"] == ["agent_a_left"]
