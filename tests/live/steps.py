"""What the live tests (and bench/handover_gap.py) share: each party's tone, and the steps of a
phone call answered by Agent A and of a consult with a dashboard Agent B.

Each leg plays its own tone; the agents' LiveKit participants play theirs. Audio is judged by
frequency (tests/live/audio.py).
"""
from __future__ import annotations

import time

from sqlalchemy import select

from app.models import Call
from tests.live.app_env import CALLER
from tests.live.listening import by_identity, remote

SIP_TONES = {"customer": 440.0, "agent_b": 1650.0}
CUSTOMER_HZ = SIP_TONES["customer"]
B_HZ = SIP_TONES["agent_b"]
A_HZ = 1000.0
WEB_HZ = 523.0  # the web customer's own tone


def phone_caller(env):
    """Alice logs in and the caller dials in over real SIP; the call is assigned to Alice."""
    a = env.agent("alice", "Alice Archer")
    caller = env.sim.call_in(CALLER)
    with env.services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    customer = env.legs.current("customer")
    assert customer.room == call.room_name and call.agent_id == "alice"
    return a, caller, call, customer


def answer(env, a, call, customer):
    """Alice joins the customer's room with a token from the app."""
    r = a.post("/api/token", {"session_id": call.id})
    assert r.status_code == 200 and r.json["room_name"] == call.room_name
    agent_a = env.join(A_HZ, r.json["token"])
    env.legs.wait_answered(customer)  # livekit-sip answers once someone publishes in the room
    return agent_a


def consult_with_dashboard_b(env, a, call_id: str, agent_a):
    """Agent A transfers to dashboard Bob; A moves to the transfer room, Bob accepts and joins."""
    b = env.agent("bob", "Bob Baker")
    r = a.post("/api/initiate-transfer", {"session_id": call_id, "to_agent_id": "bob"})
    assert r.status_code == 201, r.get_data(as_text=True)
    transfer = r.json["transfer"]
    env.leave(agent_a)
    agent_a = env.join(A_HZ, r.json["token"])
    accepted = b.post("/api/accept-transfer", {"transfer_id": transfer["id"]})
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    agent_b = env.join(B_HZ, accepted.json["token"])
    remote(env, agent_a, by_identity("agent-bob"), "Bob in the consult")
    return b, transfer, agent_a, agent_b


def phone_after(leg, mark: int, seconds: float):
    """What the phone recorded from sample `mark` on, `seconds` of it (waits for it)."""
    rate = leg.recording.rate
    end = mark + int(seconds * rate)
    deadline = time.monotonic() + seconds + 15
    while leg.recording.length() < end:
        assert time.monotonic() < deadline, "the phone stopped recording"
        time.sleep(0.05)  # the phone records in real time
    return leg.recording.samples()[mark:end], rate
