"""Phone Agent B through the Twilio simulator: dialled, briefed by TTS, accepts, takes the caller."""
from __future__ import annotations

import pytest
from livekit.protocol import models

from app.events import timeline as call_timeline
from app.models import Agent
from tests.support import call_status, grants_of, run_tasks, stored_call
from tests.telephony import (
    ACCOUNT_SID,
    B_PHONE,
    NUMBER,
    PUBLIC,
    SIP_HOST,
    TELEPHONY,
    agent_with_phone_caller,
    dial_b,
    last,
    make_sim,
    phone_call_with_context,
    transfer_row,
    types,
)

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)

SIP = models.ParticipantInfo.Kind.SIP


def test_phone_b_accepts_with_1_is_briefed_and_takes_the_caller(sim, make_agent, services, livekit_double, tasks):
    a = make_agent("alice", "Alice Archer")
    caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    transfer = body["transfer"]
    tid = transfer["id"]

    # calls.create: exactly these form fields.
    (create,) = sim.rest_calls("create")
    assert create.url == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert create.fields() == {
        "To": B_PHONE,
        "From": NUMBER,
        "Url": f"{PUBLIC}/twilio/transfer/{tid}/answer",
        "Method": "POST",
        "StatusCallback": f"{PUBLIC}/twilio/transfer/{tid}/status",
        "StatusCallbackMethod": "POST",
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": "30",
        "MachineDetection": "Enable",
        "MachineDetectionTimeout": "15",
    }
    assert transfer["status"] == "ringing" and transfer["to_phone"] == B_PHONE and transfer["to_agent_id"] is None
    assert grants_of(body["token"], livekit_double.api_key, livekit_double.api_secret).video.room == transfer["transfer_room"]
    assert last(a, "transfer_ringing")["to_phone"] == B_PHONE
    assert call_status(a, call.id) == "on_hold"

    leg.ring()
    leg.press("1").answer("human")
    sim.deliver()
    # The briefing: who, for whom, the summary, the menu; all inside one Gather.
    gather = next(s for s in leg.steps if s.kind == "gather")
    assert gather.attrs["numDigits"] == "1" and gather.attrs["action"] == f"{PUBLIC}/twilio/transfer/{tid}/gather"
    assert leg.says[0] == "Warm transfer from Alice Archer for customer Caller +14155550123."
    assert "5 5 2 1" in leg.spoken and "replacement" in leg.spoken and "Press 1 to accept" in leg.says[-2]
    assert leg.says[-1] == "Connecting you to the agent now."
    bridge = leg.sip
    assert bridge.room == transfer["transfer_room"] and bridge.host == SIP_HOST
    assert bridge.headers == {"X-WT-Call": call.id, "X-WT-Role": "agent_b", "X-WT-Transfer": tid}
    # A bridge that fails is reported, not left to die after Twilio's default 30 s.
    dial = [st for st in leg.steps if st.kind == "dial"][-1].attrs
    assert dial == {"action": f"{PUBLIC}/twilio/transfer/{tid}/bridge", "method": "POST", "timeout": "30"}
    row = transfer_row(services, tid)
    assert row.status == "briefing" and row.answered_at is not None and row.twilio_call_sid == leg.sid and row.leg_status == "in-progress"
    assert last(a, "transfer_accepted") == {"transfer_id": tid, "to_agent_id": None, "to_phone": B_PHONE, "channel": "phone", "session_id": call.id}

    r = a.post("/api/complete-transfer", {"transfer_id": tid})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "completed"
    assert sim.rest_calls("update") == []  # the answer came first; the worker moves the leg
    tasks()
    (update,) = sim.rest_calls("update")
    assert update.url == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{leg.sid}.json"
    assert set(update.fields()) == {"Twiml"} and len(update.fields()["Twiml"]) <= 4000
    moved = leg.sip
    assert moved is not bridge and moved.room == call.room_name
    assert moved.headers == {"X-WT-Call": call.id, "X-WT-Role": "agent_b", "X-WT-Transfer": tid}
    assert leg.says[-1] == "You are now connected to the caller."
    assert [st for st in leg.steps if st.kind == "dial"][-1].attrs["action"] == f"{PUBLIC}/twilio/transfer/{tid}/bridge?room=call"
    # The transfer room goes only once LiveKit has Agent B's leg in the customer's room.
    assert transfer["transfer_room"] in livekit_double.rooms
    livekit_double.join(call.room_name, f"sip_{B_PHONE}", kind=SIP, attributes={"wt_call": call.id, "wt_role": "agent_b", "wt_transfer": tid})
    tasks(after_s=1)
    assert transfer["transfer_room"] not in livekit_double.rooms and call.room_name in livekit_double.rooms
    assert last(a, "transfer_completed")["to_phone"] == B_PHONE

    # Agent A leaves; the outside number now owns the call (no dashboard agent).
    assert a.post("/api/agent-exit-room", {"session_id": call.id}).json["outcome"] == "left"
    assert a.post("/api/token", {"session_id": call.id}).status_code == 403
    stored = stored_call(services, call.id)  # Alice handed over: the call is no longer hers to read
    assert stored.status == "transferred" and stored.agent_id is None

    # Agent B hangs up: the call is over and the caller hears goodbye.
    leg.hang_up()
    sim.deliver()
    assert stored_call(services, call.id).status == "completed"
    caller.end_dial("completed")
    assert caller.says[-1] == "Thank you for calling. Goodbye."
    tasks()
    assert call.room_name not in livekit_double.rooms


def test_2_repeats_the_summary_then_1_accepts(sim, make_agent, services):
    a = make_agent("alice", "Alice Archer")
    _caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    leg.press("2", "7", "1").answer("unknown")  # AMD undecided counts as a person
    announcements = [t for t in leg.says if t.startswith("Warm transfer from")]
    assert len(announcements) == 3 and "That key is not an option." in leg.says
    assert leg.sip is not None and transfer_row(services, body["transfer"]["id"]).status == "briefing"


def test_9_declines_and_the_customer_stays_with_agent_a(sim, make_agent, services, livekit_double, tasks):
    a = make_agent("alice")
    _caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    leg.press("9").answer()
    assert leg.says[-1] == "You declined the transfer. Goodbye." and leg.ended
    sim.deliver()
    payload = last(a, "transfer_declined")
    assert payload["outcome"] == "declined" and payload["reason_code"] == "key_9" and "9" in payload["reason"]
    tasks()
    assert call_status(a, call.id) == "active" and body["transfer"]["transfer_room"] not in livekit_double.rooms
    assert a.post("/api/token", {"session_id": call.id}).json["room_name"] == call.room_name
    assert sim.rest_calls("update") == []


def test_no_key_is_declined_as_no_input(sim, make_agent, services):
    a = make_agent("alice")
    _caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    leg.press(None).answer()
    assert leg.says[-1].startswith("No key was pressed") and leg.ended
    sim.deliver()
    assert last(a, "transfer_declined")["reason_code"] == "no_input"
    assert transfer_row(services, body["transfer"]["id"]).status == "declined"
    assert call_status(a, call.id) == "active"


def test_web_customer_to_an_offline_agent_with_a_phone(sim, make_agent, services, client, tasks):
    a = make_agent("alice")
    bob = make_agent("bob", "Bob Baker", phone="+442071838751", login=False)
    r = client.post("/api/create-call", json={"customer_name": "Jane Doe"})
    sid = r.json["session_id"]
    a.post("/api/token", {"session_id": sid})
    body, leg = dial_b(sim, a, sid, to_agent_id="bob")
    assert sim.rest_calls("create")[0].fields()["To"] == "+442071838751"
    assert body["transfer"]["to_agent_id"] == "bob" and body["transfer"]["to_phone"] == "+442071838751"
    leg.press("1").answer()
    with services.db.reading() as s:
        assert s.get(Agent, "bob").active_call_id == sid  # busy while on the transfer
    assert a.post("/api/complete-transfer", {"transfer_id": body["transfer"]["id"]}).status_code == 200
    assert a.post("/api/agent-exit-room", {"session_id": sid}).json["outcome"] == "left"
    assert stored_call(services, sid).agent_id == "bob"
    tasks()
    assert leg.sip.room == f"call_{sid}"
    # Bob now owns the call on his phone; he cannot start a transfer from it.
    bob.login()
    r = bob.post("/api/initiate-transfer", {"session_id": sid, "to_agent_id": "alice"})
    assert r.status_code == 409 and r.json["error"]["code"] == "owner_on_phone"
    leg.hang_up()
    sim.deliver()
    assert stored_call(services, sid).status == "completed"
    with services.db.reading() as s:
        assert s.get(Agent, "bob").active_call_id is None


def test_agent_a_leaving_during_the_briefing_hands_the_caller_to_phone_b(sim, make_agent, services, tasks):
    a = make_agent("alice")
    _caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    leg.press("1").answer()
    r = a.post("/api/agent-exit-room", {"session_id": call.id})
    assert r.json["outcome"] == "handed_over"
    tasks()
    assert leg.sip.room == call.room_name  # moved out of the transfer room
    assert stored_call(services, call.id).status == "transferred"
    assert transfer_row(services, body["transfer"]["id"]).status == "agent_a_left"


def test_only_logged_in_agents_can_dial_and_only_allowed_numbers(make_app, rest):
    application = make_app(**TELEPHONY, TRANSFER_ALLOWED_PREFIXES="+44,+33")
    sim = make_sim(application, rest)
    anonymous = application.test_client().post("/api/initiate-transfer", json={"session_id": "x", "to_phone": B_PHONE})
    assert anonymous.status_code == 401
    a, call = agent_with_phone_caller(application, sim)
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
    assert r.status_code == 422 and r.json["error"]["code"] == "number_not_allowed"
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": "+1900"})
    assert r.status_code == 422
    assert sim.rest == [] and "transfer_ringing" not in types(a)
    assert a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": "+442071838752"}).status_code == 201


def test_a_phone_agent_may_decline_from_the_dashboard_but_accepts_by_phone(sim, make_agent, services, tasks):
    a = make_agent("alice")
    bob = make_agent("bob", "Bob Baker", phone="+442071838751", login=False)
    _caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id, to_agent_id="bob")
    leg.ring()
    bob.login()  # sees the transfer on the dashboard while his phone rings
    r = bob.post("/api/accept-transfer", {"transfer_id": body["transfer"]["id"]})
    assert r.status_code == 409 and r.json["error"]["code"] == "phone_transfer"
    assert bob.post("/api/decline-transfer", {"transfer_id": body["transfer"]["id"], "reason": "driving"}).status_code == 200
    tasks()
    assert [u.fields() for u in sim.rest_calls("update")] == [{"Status": "canceled"}] and leg.status == "canceled"
    assert "driving" in last(a, "transfer_declined")["reason"] and call_status(a, call.id) == "active"


def test_agent_a_leaving_while_phone_b_rings_requeues_and_cancels_b(sim, make_agent, services, tasks):
    a = make_agent("alice")
    _caller, call = phone_call_with_context(sim, a, services)
    _body, leg = dial_b(sim, a, call.id)
    leg.ring()
    assert a.post("/api/agent-exit-room", {"session_id": call.id}).json["outcome"] == "requeued"
    tasks()
    assert [u.fields() for u in sim.rest_calls("update")] == [{"Status": "canceled"}]
    assert last(a, "transfer_failed")["outcome"] == "agent_a_left"
    with services.db.reading() as s:
        timeline = [e["type"] for e in call_timeline(s, call.id)]
    assert timeline[-2:] == ["call_queued", "call_assigned"]  # back in the queue, and out again to the free agent


def test_a_second_complete_never_moves_phone_b_twice(sim, make_agent, services, tasks):
    """Double-click or client retry: the loser gets 409 and nothing more reaches Agent B's leg."""
    a = make_agent("alice", "Alice")
    _caller, call = phone_call_with_context(sim, a, services)
    body, leg = dial_b(sim, a, call.id)
    tid = body["transfer"]["id"]
    leg.ring()
    leg.press("1").answer("human")
    sim.deliver()
    first = a.post("/api/complete-transfer", {"transfer_id": tid})
    second = a.post("/api/complete-transfer", {"transfer_id": tid})
    assert (first.status_code, second.status_code) == (200, 409)
    tasks()
    assert len(sim.rest_calls("update")) == 1
    assert not leg.ended and leg.says[-1] == "You are now connected to the caller."
    assert transfer_row(services, tid).status == "completed" and stored_call(services, call.id).status == "transferred"


def test_the_service_never_dials_itself_and_agents_have_a_dial_budget(make_app, rest):
    application = make_app(**TELEPHONY, PHONE_DIAL_RATE_LIMIT="2/3600")
    sim = make_sim(application, rest)
    a, call = agent_with_phone_caller(application, sim)
    own = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": NUMBER})
    assert own.status_code == 422 and own.json["error"]["code"] == "number_not_allowed"
    for _ in range(2):
        t = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
        assert t.status_code == 201, t.get_data(as_text=True)
        run_tasks(application.extensions["wt"])
        assert a.post("/api/cancel-transfer", {"transfer_id": t.json["transfer"]["id"]}).status_code == 200
    third = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
    assert third.status_code == 429 and third.json["error"]["code"] == "rate_limited"
    assert len(sim.rest_calls("create")) == 2
