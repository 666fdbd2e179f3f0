"""Warm transfers end to end on the live rig, proven by what each party hears.

    caller (pjsua2, 440 Hz) --Twilio sim <Dial><Sip>, real SIP--> livekit-sip --> call_<id>
    Agent A (LiveKit SDK, 1000 Hz)   Agent B: a phone leg (1650 Hz) or a dashboard participant (1650 Hz)

The app runs against the real livekit-server and livekit-sip, provisioned by its own
`provision-sip`; livekit-server's signed webhooks reach its /livekit/webhook. Tokens come from
the app's API only. Audio is judged by frequency (tests/live/audio.py).
"""
from __future__ import annotations

import pytest

from app.models import Call, Transfer
from tests.live.app_env import B_PHONE, HOLD_HZ
from tests.live.audio import assert_hears
from tests.live.listening import by_identity, listen, remote, sip_role
from tests.live.steps import A_HZ, B_HZ, CUSTOMER_HZ, answer, phone_caller

pytestmark = pytest.mark.live

TONES = [CUSTOMER_HZ, A_HZ, B_HZ, HOLD_HZ]


def others(*heard: float) -> list[float]:
    return [f for f in TONES if f not in heard]


def phone_call_answered_by_a(env):
    a, caller, call, customer = phone_caller(env)
    return a, caller, call, customer, answer(env, a, call, customer)


def moved_leg(env, old):
    """Agent B's leg after the worker redirected it into the customer's room."""
    return env.wait_until(lambda: env.legs.current("agent_b") is not old and env.legs.current("agent_b"), 10, "Agent B's leg moved")


def consult_with_phone_b(env, a, call, agent_a):
    """Agent A starts a transfer to B's phone, moves to the transfer room; B answers and presses 1."""
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
    assert r.status_code == 201, r.get_data(as_text=True)
    transfer = r.json["transfer"]
    env.leave(agent_a)  # on hold: Agent A stops publishing to the customer's room
    agent_a = env.join(A_HZ, r.json["token"])
    b_call = env.wait_until(lambda: env.sim.outbound and env.sim.outbound[-1], 10, "the worker dialling Agent B")
    b_call.ring()
    b_call.press("1").answer("human")
    env.sim.deliver()
    b_leg = env.legs.current("agent_b")
    assert b_leg.room == transfer["transfer_room"]
    env.legs.wait_answered(b_leg)
    assert env.row(Transfer, transfer["id"]).status == "briefing"
    return transfer, agent_a, b_call, b_leg


def test_phone_customer_and_warm_transfer_to_a_phone_agent_b(live_env):
    env = live_env
    a, caller, call, customer = phone_caller(env)
    # LiveKit's webhook for the caller's SIP participant (recognised by its X-WT-* attributes)
    # records the arrival; the call is not active, and livekit-sip keeps the caller ringing,
    # until Alice joins.
    env.wait_until(lambda: env.row(Call, call.id).customer_joined_at, 10, "the caller's arrival recorded")
    assert env.row(Call, call.id).status == "ringing"
    assert "CONFIRMED" not in [e.get("state") for e in customer.phone.events]
    agent_a = answer(env, a, call, customer)
    assert env.row(Call, call.id).status == "active"

    caller_id = remote(env, agent_a, sip_role("customer"), "the caller in the customer's room")
    heard = listen(env, TONES, {"alice": (agent_a, caller_id)}, {"customer": customer})
    assert_hears(heard["alice"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent A hearing the phone customer")
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "phone customer hearing Agent A")

    transfer, agent_a, b_call, b_leg = consult_with_phone_b(env, a, call, agent_a)
    b_id = remote(env, agent_a, sip_role("agent_b"), "Agent B's phone in the transfer room")
    heard = listen(env, TONES, {"alice": (agent_a, b_id)}, {"customer": customer, "b": b_leg})
    assert_hears(heard["alice"], B_HZ, others(B_HZ), "Agent A hearing phone Agent B in the briefing")
    assert_hears(heard["b"], A_HZ, others(A_HZ), "phone Agent B hearing Agent A in the briefing")
    assert_hears(heard["customer"], HOLD_HZ, others(HOLD_HZ), "the customer on hold during the briefing (hold audio only)")

    r = a.post("/api/complete-transfer", {"transfer_id": transfer["id"]})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "completed"
    moved = moved_leg(env, b_leg)
    assert moved.room == call.room_name
    env.legs.wait_answered(moved)
    env.legs.wait_ended(b_leg, 10)
    env.leave(agent_a)
    assert a.post("/api/agent-exit-room", {"session_id": call.id}).status_code == 200
    env.wait_until(lambda: not env.rooms(transfer["transfer_room"]), 10, "the transfer room deleted")
    heard = listen(env, TONES, {}, {"customer": customer, "b": moved})
    assert_hears(heard["customer"], B_HZ, others(B_HZ), "the customer hearing Agent B after the transfer")
    assert_hears(heard["b"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent B hearing the customer after the transfer")
    assert "agent-alice" not in env.identities(call.room_name)
    bridged = env.wait_until(lambda: env.row(Transfer, transfer["id"]).bridged_at, 10, "bridged_at from LiveKit's webhook")
    assert bridged >= env.row(Transfer, transfer["id"]).requested_at
    assert env.row(Call, call.id).status == "transferred"

    caller.hang_up()  # the caller ends the call: Agent B's leg ends with the room
    env.wait_until(lambda: env.row(Call, call.id).status == "completed", 10, "the call ended")
    env.legs.wait_ended(moved, 15)
    env.wait_until(lambda: not env.rooms(call.room_name), 10, "the customer's room deleted")


def test_warm_transfer_to_a_dashboard_agent_b(live_env):
    env = live_env
    a, caller, call, customer, agent_a = phone_call_answered_by_a(env)
    b = env.agent("bob", "Bob Baker")  # logs in after the call went to Alice
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_agent_id": "bob"})
    assert r.status_code == 201, r.get_data(as_text=True)
    transfer = r.json["transfer"]
    env.leave(agent_a)
    agent_a = env.join(A_HZ, r.json["token"])
    accepted = b.post("/api/accept-transfer", {"transfer_id": transfer["id"]})
    assert accepted.status_code == 200 and accepted.json["transfer"]["status"] == "briefing"
    agent_b = env.join(B_HZ, accepted.json["token"])

    heard = listen(env, TONES, {"alice": (agent_a, remote(env, agent_a, by_identity("agent-bob"), "Bob")),
                                "bob": (agent_b, remote(env, agent_b, by_identity("agent-alice"), "Alice"))},
                   {"customer": customer})
    assert_hears(heard["alice"], B_HZ, others(B_HZ), "Agent A hearing Agent B in the briefing")
    assert_hears(heard["bob"], A_HZ, others(A_HZ), "Agent B hearing Agent A in the briefing")
    assert_hears(heard["customer"], HOLD_HZ, others(HOLD_HZ), "the customer on hold during the briefing (hold audio only)")

    assert a.post("/api/complete-transfer", {"transfer_id": transfer["id"]}).status_code == 200
    r = b.post("/api/token", {"session_id": call.id})
    assert r.status_code == 200 and r.json["room_name"] == call.room_name
    env.leave(agent_b)
    agent_b = env.join(B_HZ, r.json["token"])
    env.leave(agent_a)
    assert a.post("/api/agent-exit-room", {"session_id": call.id}).status_code == 200
    env.wait_until(lambda: not env.rooms(transfer["transfer_room"]), 10, "the transfer room deleted")

    caller_id = remote(env, agent_b, sip_role("customer"), "the caller, for Agent B")
    heard = listen(env, TONES, {"bob": (agent_b, caller_id)}, {"customer": customer})
    assert_hears(heard["bob"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent B hearing the customer after the transfer")
    assert_hears(heard["customer"], B_HZ, others(B_HZ), "the customer hearing Agent B after the transfer")
    assert sorted(i for i in env.identities(call.room_name) if i.startswith("agent-")) == ["agent-bob"]
    env.wait_until(lambda: env.row(Transfer, transfer["id"]).bridged_at, 10, "bridged_at from LiveKit's webhook")
    assert env.row(Call, call.id).agent_id == "bob"


def test_customer_hanging_up_during_the_briefing_ends_agent_b_leg_and_cleans_up(live_env):
    env = live_env
    a, caller, call, customer, agent_a = phone_call_answered_by_a(env)
    transfer, agent_a, b_call, b_leg = consult_with_phone_b(env, a, call, agent_a)
    remote(env, agent_a, sip_role("agent_b"), "Agent B's phone in the transfer room")

    # The caller's SIP leg goes away; Twilio's own callbacks are late, so only LiveKit's
    # webhook (participant_left for the SIP customer) can end the call now.
    env.legs.hang_up(customer)
    env.wait_until(lambda: env.row(Call, call.id).status == "completed", 10, "the call ended by LiveKit's webhook")
    assert env.row(Call, call.id).end_reason == "customer_hung_up"
    assert env.row(Transfer, transfer["id"]).status == "caller_left"
    env.legs.wait_ended(b_leg, 15)
    env.wait_until(lambda: b_call.ended, 10, "Agent B's call over (Twilio's side)")
    assert "The caller has hung up" in b_call.spoken
    failed = [n["payload"] for n in a.notifications() if n["type"] == "transfer_failed"]
    assert failed and failed[-1]["outcome"] == "caller_left"
    assert a.types().count("call_ended") == 1
    env.wait_until(lambda: not env.rooms(call.room_name, transfer["transfer_room"]), 10, "both rooms deleted")

    caller.hang_up()  # Twilio's news arrives: nothing more happens
    env.sim.deliver()
    assert a.types().count("call_ended") == 1 and env.row(Call, call.id).end_reason == "customer_hung_up"


def test_agent_a_cancelling_during_the_briefing_returns_to_the_customer(live_env):
    env = live_env
    a, caller, call, customer, agent_a = phone_call_answered_by_a(env)
    transfer, agent_a, b_call, b_leg = consult_with_phone_b(env, a, call, agent_a)
    remote(env, agent_a, sip_role("agent_b"), "Agent B's phone in the transfer room")

    r = a.post("/api/cancel-transfer", {"transfer_id": transfer["id"]})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "cancelled"
    env.legs.wait_ended(b_leg, 15)
    env.wait_until(lambda: b_call.ended, 10, "Agent B's call over (Twilio's side)")
    env.leave(agent_a)
    r = a.post("/api/token", {"session_id": call.id})
    assert r.status_code == 200 and r.json["room_name"] == call.room_name
    agent_a = env.join(A_HZ, r.json["token"])
    env.sim.deliver()
    assert env.row(Call, call.id).status == "active"

    caller_id = remote(env, agent_a, sip_role("customer"), "the caller, for Agent A again")
    heard = listen(env, TONES, {"alice": (agent_a, caller_id)}, {"customer": customer})
    assert_hears(heard["alice"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent A hearing the customer after cancelling")
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "the customer hearing Agent A after cancelling")
    assert not env.rooms(transfer["transfer_room"])
    assert [i for i in env.identities(call.room_name) if i != caller_id] == ["agent-alice"]
