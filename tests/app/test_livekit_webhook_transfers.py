"""LiveKit webhooks around phone callers and transfers: the SIP caller hanging up, Agent B
(browser or phone leg) arriving in the transfer room and then in the customer's room.

SIP participants are recognised only by the attributes the inbound trunk maps from Twilio's
X-WT-* headers; their identities here are LiveKit SIP's usual `sip_…` ones, which the app must
never rely on."""
from __future__ import annotations

import pytest
from livekit.protocol import models
from sqlalchemy import select

from app.models import Call, Transfer
from tests.livekit_webhooks import join, leave, row, send
from tests.support import call_status, run_tasks, start_call, start_transfer, stored_call
from tests.telephony import B_PHONE, dial_b, last, phone_call_with_context

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)

SIP = models.ParticipantInfo.Kind.SIP


def sip_customer(double, call, identity: str = "sip_+14155550123"):
    return join(double, call.room_name, identity, kind=SIP, attributes={"wt_call": call.id, "wt_role": "customer", "sip.trunkID": "ST_x"})


def sip_agent_b(double, room: str, call_id: str, transfer_id: str):
    return join(double, room, f"sip_{B_PHONE}", kind=SIP, attributes={"wt_call": call_id, "wt_role": "agent_b", "wt_transfer": transfer_id})


def briefed_phone_b(sim, a, services):
    caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    leg.ring()
    leg.press("1").answer("human")
    sim.deliver()
    return caller, call, body["transfer"], leg


def test_sip_caller_leaving_ends_the_call_at_once_and_agent_b_is_told(client, sim, make_agent, services, livekit_double, tasks):
    a = make_agent("alice")
    caller, call, transfer, leg = briefed_phone_b(sim, a, services)
    customer = sip_customer(livekit_double, call)
    assert send(client, livekit_double, "participant_joined", room=call.room_name, participant=customer) == "customer present"
    assert call_status(a, call.id) == "on_hold"

    assert send(client, livekit_double, "participant_left", room=call.room_name, participant=customer) == "call ended (caller hung up)"
    stored = row(services, Call, call.id)
    assert stored.status == "completed" and stored.end_reason == "customer_hung_up"
    assert row(services, Transfer, transfer["id"]).status == "caller_left"
    assert last(a, "transfer_failed")["outcome"] == "caller_left"
    # Agent B hears that the caller left (a redirect on their leg), then the leg ends.
    tasks()
    (update,) = sim.rest_calls("update")
    assert "caller has hung up" in update.fields()["Twiml"] and leg.ended
    assert transfer["transfer_room"] not in livekit_double.rooms and call.room_name not in livekit_double.rooms

    # Twilio's own news of the hang-up arrives later: nothing more happens.
    ended_events = a.types().count("call_ended")
    caller.hang_up()
    sim.deliver()
    assert a.types().count("call_ended") == ended_events == 1
    assert len(sim.rest_calls("update")) == 1


def test_a_sip_leg_livekit_gave_up_on_is_not_the_caller_hanging_up(client, sim, make_agent, services, livekit_double):
    """LiveKit SIP closes a leg that rang past the trunk's ringing timeout itself (486), with the
    leg still marked ringing; only a leg marked hangup is the caller gone. Twilio decides the rest."""
    make_agent("alice")
    caller = sim.call_in("+14155550123")
    run_tasks(services)  # the room
    with services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    ringing = join(livekit_double, call.room_name, "sip_+14155550123", kind=SIP,
                   attributes={"wt_call": call.id, "wt_role": "customer", "sip.callStatus": "ringing"})
    assert send(client, livekit_double, "participant_joined", room=call.room_name, participant=ringing) == "customer present"
    outcome = send(client, livekit_double, "participant_left", room=call.room_name, participant=ringing)
    assert outcome.startswith("caller's SIP leg closed by LiveKit SIP (ringing)")
    stored = row(services, Call, call.id)
    assert stored.status == "ringing" and stored.customer_left_at is not None
    hung_up = join(livekit_double, call.room_name, "sip_+14155550123", kind=SIP,
                   attributes={"wt_call": call.id, "wt_role": "customer", "sip.callStatus": "hangup"})
    assert send(client, livekit_double, "participant_left", room=call.room_name, participant=hung_up) == "call ended (caller hung up)"


def test_phone_caller_waiting_in_the_queue_survives_its_empty_room_timing_out(client, sim, services, livekit_double):
    caller = sim.call_in("+14155550123")  # nobody is logged in: queued, on Twilio's hold loop
    with services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    assert call.status == "queued"
    assert send(client, livekit_double, "room_finished", room=call.room_name) == "ignored (phone caller not yet bridged)"
    assert row(services, Call, call.id).status == "queued"


def test_phone_agent_b_in_the_transfer_room_then_in_the_customer_room(client, sim, make_agent, services, livekit_double, tasks):
    a = make_agent("alice")
    _, call, transfer, leg = briefed_phone_b(sim, a, services)
    tid, room = transfer["id"], transfer["transfer_room"]
    b_leg = sip_agent_b(livekit_double, room, call.id, tid)
    assert send(client, livekit_double, "participant_joined", room=room, participant=b_leg) == "already briefing"
    assert a.types().count("transfer_accepted") == 1

    # Agent B's leg is not taken for a hand-over while the briefing goes on.
    early = sip_agent_b(livekit_double, call.room_name, call.id, tid)
    assert send(client, livekit_double, "participant_joined", room=call.room_name, participant=early) == "ignored"
    leave(livekit_double, call.room_name, early.identity)
    assert a.post("/api/complete-transfer", {"transfer_id": tid}).status_code == 200
    tasks()  # the worker moves the leg into the customer's room...
    assert room in livekit_double.rooms  # ...and keeps the transfer room until LiveKit has it there
    moved = sip_agent_b(livekit_double, call.room_name, call.id, tid)
    assert send(client, livekit_double, "participant_joined", room=call.room_name, participant=moved) == "agent b bridged"
    done = row(services, Transfer, tid)
    assert done.status == "completed" and done.handed_over_at is not None and done.bridged_at >= done.handed_over_at
    tasks(after_s=1)
    assert room not in livekit_double.rooms
    assert send(client, livekit_double, "participant_joined", room=call.room_name, participant=moved) == "ignored"
    # Agent B's leg leaving the transfer room (the redirect) is not the caller leaving.
    assert send(client, livekit_double, "participant_left", room=room, participant=b_leg) == "ignored"
    assert stored_call(services, call.id).status == "transferred"


def test_browser_agent_b_bridged_only_once_handed_over(client, make_agent, services, livekit_double):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    bob = join(livekit_double, t["transfer_room"], "agent-bob")
    assert send(client, livekit_double, "participant_joined", room=t["transfer_room"], participant=bob) == "already briefing"
    early = join(livekit_double, call["room_name"], "agent-bob")
    assert send(client, livekit_double, "participant_joined", room=call["room_name"], participant=early) == "ignored"
    assert row(services, Transfer, t["id"]).bridged_at is None

    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert row(services, Transfer, t["id"]).bridged_at is None  # handed over, not yet there
    assert b.post("/api/token", {"session_id": call["session_id"]}).json["room_name"] == call["room_name"]
    assert send(client, livekit_double, "participant_joined", room=call["room_name"], participant=join(livekit_double, call["room_name"], "agent-bob")) == "agent b bridged"
    done = row(services, Transfer, t["id"])
    assert done.bridged_at is not None and done.bridged_at >= done.handed_over_at
    # Both agents' dashboards hear about it (Agent B's call timer starts from it).
    for agent in (a, b):
        (pushed,) = [n["payload"] for n in agent.notifications() if n["type"] == "transfer_bridged"]
        assert pushed["transfer_id"] == t["id"] and pushed["bridged_at"] == done.bridged_at.isoformat()


def test_agent_b_seen_in_the_transfer_room_before_accept_commits_starts_the_briefing(client, make_agent, services, livekit_double, tasks):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    impostor = join(livekit_double, t["transfer_room"], "agent-carol")
    assert send(client, livekit_double, "participant_joined", room=t["transfer_room"], participant=impostor) == "participant removed: not part of this call"
    tasks()
    assert "agent-carol" not in livekit_double.rooms[t["transfer_room"]].participants
    bob = join(livekit_double, t["transfer_room"], "agent-bob")
    assert send(client, livekit_double, "participant_joined", room=t["transfer_room"], participant=bob) == "briefing"
    assert row(services, Transfer, t["id"]).status == "briefing"
    assert last(a, "transfer_accepted")["channel"] == "browser"
    assert b.get("/api/me").json["agent"]["busy"] is True
    # The accept request itself then finds the transfer already briefing.
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 409
