"""Hold audio on the live rig: what phone and web customers hear while the agents consult, and how
fast it goes when an agent is back, judged by frequency.

The worker plays HOLD_HZ (a tone file at 16 kHz, resampled to LiveKit's 48 kHz) into the
customer's room as `hold-<call_id>`. Every other party sends its own tone, so "the customer hears
the hold audio and neither agent" is a statement about frequencies in what they received.
"""
from __future__ import annotations

import pytest

from app.models import Call
from tests.live.app_env import HOLD_HZ
from tests.live.audio import analyse, assert_hears, heard_from, heard_until
from tests.live.listening import by_identity, listen, remote
from tests.live.participant import RATE
from tests.live.steps import A_HZ, B_HZ, CUSTOMER_HZ, WEB_HZ, answer, consult_with_dashboard_b, phone_after, phone_caller

pytestmark = pytest.mark.live

TONES = [CUSTOMER_HZ, WEB_HZ, A_HZ, B_HZ, HOLD_HZ]
AFTER_S = 3.0  # how much of what the customer hears after an agent is back is examined
GONE_WITHIN_S = 1.0


def others(*heard: float) -> list[float]:
    return [f for f in TONES if f not in heard]


def test_a_phone_customer_hears_hold_audio_in_the_consult_and_it_stops_when_agent_a_is_back(live_env):
    env = live_env
    a, caller, call, customer = phone_caller(env)
    agent_a = answer(env, a, call, customer)
    b, transfer, agent_a, agent_b = consult_with_dashboard_b(env, a, call.id, agent_a)

    heard = listen(env, TONES, {}, {"customer": customer})
    assert_hears(heard["customer"], HOLD_HZ, others(HOLD_HZ), "the phone customer during the consult: hold audio, no agent")
    assert f"hold-{call.id}" in env.identities(call.room_name)

    mark = customer.recording.length()
    r = a.post("/api/cancel-transfer", {"transfer_id": transfer["id"]})
    assert r.status_code == 200
    samples, rate = phone_after(customer, mark, AFTER_S)
    stopped = heard_until(samples, rate, HOLD_HZ)
    print(f"[hold] phone customer: hold audio last heard {stopped:.2f}s after the cancel answered")
    assert stopped is not None and stopped <= GONE_WITHIN_S, f"hold audio still heard {stopped}s after the cancel"
    env.wait_until(lambda: f"hold-{call.id}" not in env.identities(call.room_name), 5, "the hold participant gone")

    env.leave(agent_a)
    agent_a = env.join(A_HZ, a.post("/api/token", {"session_id": call.id}).json["token"])
    heard = listen(env, TONES, {}, {"customer": customer})
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "the phone customer with Agent A again")


def test_a_web_customer_hears_hold_audio_and_it_stops_the_moment_agent_b_reaches_them(live_env):
    env = live_env
    a = env.agent("alice", "Alice Archer")
    created = env.app.test_client().post("/api/create-call", json={"customer_name": "Wendy Web"})
    assert created.status_code == 201
    sid = created.json["session_id"]
    customer = env.join(WEB_HZ, created.json["token"])
    agent_a = env.join(A_HZ, a.post("/api/token", {"session_id": sid}).json["token"])
    remote(env, customer, by_identity("agent-alice"), "Alice, for the web customer")

    b, transfer, agent_a, agent_b = consult_with_dashboard_b(env, a, sid, agent_a)
    hold = f"hold-{sid}"
    remote(env, customer, by_identity(hold), "the hold audio, for the web customer")
    heard_hold = analyse(env.loop.run(customer.record(hold, 2.0, 15)), RATE, TONES)
    assert_hears(heard_hold, HOLD_HZ, others(HOLD_HZ), "the web customer during the consult")
    heard_ids = set(customer.heard)
    assert "agent-alice" not in [p.identity for p in customer.room.remote_participants.values()]
    assert "agent-bob" not in heard_ids  # never in the customer's room during the consult

    assert a.post("/api/complete-transfer", {"transfer_id": transfer["id"]}).status_code == 200
    # Hold continues until Agent B is actually in the room: no silence in between.
    env.wait_until(lambda: env.row(Call, sid).status == "transferred", 5, "the hand-over")
    assert hold in env.identities(f"call_{sid}")
    env.leave(agent_b)
    agent_b = env.join(B_HZ, b.post("/api/token", {"session_id": sid}).json["token"])
    remote(env, customer, by_identity("agent-bob"), "Bob, for the web customer")  # returns once 0.5 s of Bob is in
    hold_at_bob = customer.samples_from(hold)
    env.wait_until(lambda: hold not in [p.identity for p in customer.room.remote_participants.values()], 5, "the hold participant gone")
    tail = customer.audio_from(hold, hold_at_bob)
    after_bob = 0.5 + (heard_until(tail, RATE, HOLD_HZ) or 0.0)
    print(f"[hold] web customer: hold audio heard for at most {after_bob:.2f}s after Bob's first audio")
    assert after_bob <= GONE_WITHIN_S, f"hold audio went on {after_bob:.2f}s after Agent B was heard"
    bob = env.loop.run(customer.record("agent-bob", 2.0, 15))
    assert_hears(analyse(bob, RATE, TONES), B_HZ, others(B_HZ), "the web customer hearing Agent B")
    assert heard_from(bob, RATE, B_HZ) == 0.0


@pytest.mark.app_settings(AGENT_ANSWER_TIMEOUT_S=5)
def test_hold_audio_plays_while_a_caller_waits_for_the_next_agent_after_a_missed_assignment(live_env):
    """Alice is assigned but never joins: after AGENT_ANSWER_TIMEOUT_S the call goes to Bob, and the
    caller (already in the room) hears hold audio, which also answers their leg, until Bob joins."""
    env = live_env
    env.agent("alice", "Alice Archer")
    caller = env.sim.call_in("+14155550123")
    call = _call_by_sid(env, caller.sid)
    customer = env.legs.current("customer")
    b = env.agent("bob", "Bob Baker")
    assert "CONFIRMED" not in [e.get("state") for e in customer.phone.events]  # ringing for Alice
    # Alice's 5 s run out on the worker's own clock: the call goes to Bob.
    env.wait_until(lambda: env.row(Call, call.id).agent_id == "bob", 15, "the call moved to Bob")
    env.legs.wait_answered(customer)  # hold audio answered the caller's leg
    heard = listen(env, TONES, {}, {"customer": customer})
    assert_hears(heard["customer"], HOLD_HZ, others(HOLD_HZ), "the caller waiting for the next agent")
    agent_b = env.join(B_HZ, b.post("/api/token", {"session_id": call.id}).json["token"])
    remote(env, agent_b, lambda p: p.attributes.get("wt_role") == "customer", "the caller, for Bob")
    env.wait_until(lambda: f"hold-{call.id}" not in env.identities(call.room_name), 5, "the hold participant gone")
    heard = listen(env, TONES, {}, {"customer": customer})
    assert_hears(heard["customer"], B_HZ, others(B_HZ), "the caller with Bob")


def _call_by_sid(env, sid: str):
    from sqlalchemy import select

    with env.services.db.reading() as s:
        return s.scalar(select(Call).where(Call.twilio_call_sid == sid))
