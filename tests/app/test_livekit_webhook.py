"""POST /livekit/webhook with webhooks signed exactly as livekit-server signs them (the Twirp
double's `webhook()`): verification, and the call and transfer states they drive, including
retries, replays and out-of-order delivery. SQLite and PostgreSQL (conftest's backends)."""
from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

from livekit import api as lk
from livekit.protocol import models
from sqlalchemy import func, select

from app.models import Call, LiveKitWebhookEvent, Transfer
from tests.livekit_webhooks import join, leave, post, row, send, session
from tests.support import call_status, start_call, start_transfer

SIP = models.ParticipantInfo.Kind.SIP


def seen_events(services) -> int:
    with services.db.reading() as s:
        return s.scalar(select(func.count()).select_from(LiveKitWebhookEvent))


# -- verification ---------------------------------------------------------------------------------
def test_signature_is_verified_before_anything_happens(client, livekit_double, services):
    call = start_call(client)
    body, token = livekit_double.webhook("participant_joined", room=call["room_name"], participant=session(f"customer-{call['session_id']}", "PA_1", 1000))

    assert post(client, body.replace("customer-", "customer-x"), token).status_code == 401  # tampered body
    bearer = post(client, body, "Bearer " + token)
    assert bearer.status_code == 401 and bearer.json["error"]["code"] == "invalid_webhook_signature"
    assert "Bearer" in bearer.json["error"]["message"]
    assert post(client, body, None).status_code == 401
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    forged = lk.AccessToken(livekit_double.api_key, "another-secret-of-at-least-32-chars!").with_sha256(digest).to_jwt()
    assert post(client, body, forged).status_code == 401
    expired = lk.AccessToken(livekit_double.api_key, livekit_double.api_secret).with_ttl(timedelta(minutes=-5)).with_sha256(digest).to_jwt()
    assert post(client, body, expired).status_code == 401
    no_hash = lk.AccessToken(livekit_double.api_key, livekit_double.api_secret).to_jwt()
    assert post(client, body, no_hash).status_code == 401
    assert seen_events(services) == 0 and row(services, Call, call["session_id"]).customer_joined_at is None

    garbage = "not json"
    signed = lk.AccessToken(livekit_double.api_key, livekit_double.api_secret).with_sha256(
        base64.b64encode(hashlib.sha256(garbage.encode()).digest()).decode()).to_jwt()
    assert post(client, garbage, signed).status_code == 400

    ok = post(client, body, token)
    assert ok.status_code == 200 and ok.json["outcome"] == "customer present"
    assert post(client, body, token).json["outcome"] == "duplicate"  # LiveKit's retry / a replay
    assert seen_events(services) == 1


def test_rooms_and_participants_that_are_not_ours_are_ignored(client, livekit_double):
    assert send(client, livekit_double, "participant_joined", room="someone_elses_room", participant=session("x", "PA_x", 1)) == "ignored"
    assert send(client, livekit_double, "room_finished", room="call_doesnotexist") == "unknown room"
    call = start_call(client)
    # A SIP participant without our attributes is never taken for the customer, whatever its identity.
    stranger = join(livekit_double, call["room_name"], "sip_+14155550123", kind=SIP)
    assert send(client, livekit_double, "participant_left", room=call["room_name"], participant=stranger) == "ignored"
    other = join(livekit_double, call["room_name"], "sip_x", kind=SIP, attributes={"wt_call": "another", "wt_role": "customer"})
    assert send(client, livekit_double, "participant_left", room=call["room_name"], participant=other) == "ignored"
    assert send(client, livekit_double, "room_started", room=call["room_name"]) == "ignored"


# -- the customer's room ----------------------------------------------------------------------------
def test_customer_joining_is_recorded_and_the_agent_joining_makes_the_call_active(client, make_agent, livekit_double, services, tasks):
    a, _ = make_agent("alice"), make_agent("bob")
    call = start_call(client)
    sid, room = call["session_id"], call["room_name"]
    customer = join(livekit_double, room, f"customer-{sid}")
    assert send(client, livekit_double, "participant_joined", room=room, participant=customer) == "customer present"
    stored = row(services, Call, sid)
    assert stored.status == "ringing" and stored.customer_joined_at is not None and stored.answered_at is None

    stranger = join(livekit_double, room, "agent-bob")  # Bob holds a token for this room but no part in the call
    assert send(client, livekit_double, "participant_joined", room=room, participant=stranger) == "participant removed: not part of this call"
    tasks()
    assert "agent-bob" not in livekit_double.rooms[room].participants
    assert row(services, Call, sid).status == "ringing"

    agent = join(livekit_double, room, "agent-alice")
    assert send(client, livekit_double, "participant_joined", room=room, participant=agent, event_id="EV_agent") == "call active"
    assert row(services, Call, sid).status == "active" and row(services, Call, sid).answered_at is not None
    assert a.types().count("call_active") == 1
    assert send(client, livekit_double, "participant_joined", room=room, participant=agent, event_id="EV_agent") == "duplicate"
    assert send(client, livekit_double, "participant_joined", room=room, participant=agent) == "ignored"  # same news, new id
    assert a.types().count("call_active") == 1


def test_web_customer_refresh_keeps_the_call_and_out_of_order_sessions_are_sorted(client, make_agent, livekit_double, services, tasks):
    a = make_agent("alice")
    call = start_call(client, a)
    sid, room, me = call["session_id"], call["room_name"], f"customer-{call['session_id']}"
    first, second = session(me, "PA_1", 1_000), session(me, "PA_2", 2_000)

    # A refresh as LiveKit may deliver it: the new session's join before the old one's leave.
    assert send(client, livekit_double, "participant_joined", room=room, participant=first) == "customer present"
    assert send(client, livekit_double, "participant_joined", room=room, participant=second) == "customer present"
    assert send(client, livekit_double, "participant_left", room=room, participant=first) == "older customer session"
    assert row(services, Call, sid).customer_left_at is None
    assert send(client, livekit_double, "participant_joined", room=room, participant=first) == "older customer session"

    # The newest session leaves, then its own join arrives late: the customer is still gone.
    third = session(me, "PA_3", 3_000)
    assert send(client, livekit_double, "participant_left", room=room, participant=third) == "customer left; waiting for a reconnect"
    assert send(client, livekit_double, "participant_joined", room=room, participant=third) == "older customer session"
    assert row(services, Call, sid).customer_left_at is not None and call_status(a, sid) == "active"
    # Agent A was told each time the customer came and went (for a "reconnecting…" banner).
    presence = [n["payload"] for n in a.notifications() if n["type"] == "customer_presence"]
    assert [p["present"] for p in presence] == [True, True, False]
    assert presence[-1]["grace_s"] == 30

    # Grace not over yet: nothing happens.
    tasks(after_s=29)
    assert call_status(a, sid) == "active"
    # Over, but LiveKit says the customer is in the room (a lost webhook): the call is kept.
    join(livekit_double, room, me)
    tasks(after_s=31)
    assert call_status(a, sid) == "active" and row(services, Call, sid).customer_left_at is None

    # Gone for good.
    fourth = session(me, "PA_4", 4_000)
    assert send(client, livekit_double, "participant_left", room=room, participant=fourth) == "customer left; waiting for a reconnect"
    leave(livekit_double, room, me)
    tasks(after_s=31)
    stored = row(services, Call, sid)
    assert stored.status == "completed" and stored.end_reason == "customer_left"
    assert a.types()[-1] == "call_ended" and room not in livekit_double.rooms


def test_web_customer_gone_past_the_grace_during_a_briefing_is_caller_left(client, make_agent, livekit_double, services, tasks):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid, room = call["session_id"], call["room_name"]
    t = start_transfer(a, call, "bob")
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert send(client, livekit_double, "participant_left", room=room, participant=session(f"customer-{sid}", "PA_1", 1_000)).startswith("customer left")
    tasks(after_s=60)
    assert row(services, Transfer, t["id"]).status == "caller_left"
    for agent in (a, b):
        failed = [n["payload"] for n in agent.notifications() if n["type"] == "transfer_failed"][-1]
        assert failed["outcome"] == "caller_left"
    assert t["transfer_room"] not in livekit_double.rooms and room not in livekit_double.rooms


def test_with_no_grace_a_web_customer_leaving_ends_the_call_at_once(make_app, make_agent, livekit_double, services):
    app = make_app(CUSTOMER_RECONNECT_GRACE_S=0)
    client = app.test_client()
    call = start_call(client)
    sid = call["session_id"]
    assert send(client, livekit_double, "participant_left", room=call["room_name"], participant=session(f"customer-{sid}", "PA_1", 1)) == "call ended (customer left)"
    with app.extensions["wt"].db.reading() as s:
        assert s.get(Call, sid).status == "abandoned"  # no agent had joined yet
    # A session whose media never connected is reported as aborted rather than left: same thing.
    other = start_call(client, name="Flaky Network")
    aborted = session(f"customer-{other['session_id']}", "PA_2", 2)
    assert send(client, livekit_double, "participant_connection_aborted", room=other["room_name"], participant=aborted) == "call ended (customer left)"


# -- room_finished ----------------------------------------------------------------------------------
def test_room_finished_ends_a_conversation_but_not_a_transfer_or_a_waiting_phone_caller(client, make_agent, livekit_double, services):
    a, _bob = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    assert send(client, livekit_double, "room_finished", room=t["transfer_room"]) == "transfer room finished"
    assert row(services, Transfer, t["id"]).status == "ringing"
    assert send(client, livekit_double, "room_finished", room=call["room_name"]) == "call ended (room finished)"
    stored = row(services, Call, call["session_id"])
    assert stored.status == "completed" and stored.end_reason == "room_finished"
    assert row(services, Transfer, t["id"]).status == "cancelled"
    assert send(client, livekit_double, "room_finished", room=call["room_name"]) == "call already ended"

    # A web customer who never joined: ringing, and the room timed out empty.
    waiting = start_call(client, name="Nobody Came")
    assert send(client, livekit_double, "room_finished", room=waiting["room_name"]) == "call abandoned (room finished)"
    assert row(services, Call, waiting["session_id"]).status == "abandoned"
