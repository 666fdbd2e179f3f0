"""When LiveKit SIP answers a phone caller, and what happens to one who waits longer than its
ringing timeout, on the real livekit-sip.

This module's trunk is provisioned with a short ringing timeout (RINGING_S) so the slow path is
seen in seconds: livekit-sip v1.8.0 rejects a leg that has rung that long with nobody publishing
audio in the room (486, pkg/sip/inbound.go), and answers as soon as any audio track is published,
muted or not (it subscribes on publication: pkg/sip/room.go `subscribeTo`).
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app import create_app
from app.models import Call
from tests.aio import run_async
from tests.live.app_env import HOLD_HZ, app_config, new_trunk_password, provision_output, remove_our_sip_objects
from tests.live.audio import assert_hears
from tests.live.listening import listen, remote, sip_role
from tests.live.steps import A_HZ, B_HZ, CUSTOMER_HZ, phone_caller

pytestmark = pytest.mark.live

RINGING_S = 8
TONES = [CUSTOMER_HZ, A_HZ, B_HZ, HOLD_HZ]


def others(*heard: float) -> list[float]:
    return [f for f in TONES if f not in heard]


@pytest.fixture(scope="module")
def provisioned(live_rig, app_host, tmp_path_factory):
    """This module's trunk: LiveKit SIP gives up on an unanswered leg after RINGING_S."""
    password = new_trunk_password()
    config = dict(app_config(live_rig, app_host, tmp_path_factory.mktemp("provision-timing"), password),
                  LIVEKIT_SIP_RINGING_TIMEOUT_S=RINGING_S)
    application = create_app(config)
    try:
        output = provision_output(application)
    finally:
        application.extensions["wt"].close()
    assert f"{RINGING_S} s" in output or "create inbound trunk" in output
    yield password, output
    run_async(lambda: remove_our_sip_objects(live_rig))


def _call(env, sid: str) -> Call:
    with env.services.db.reading() as s:
        return s.scalar(select(Call).where(Call.twilio_call_sid == sid))


def test_an_agent_a_who_joins_muted_still_gets_the_phone_caller_answered(live_env):
    env = live_env
    a, caller, call, customer = phone_caller(env)
    r = a.post("/api/token", {"session_id": call.id})
    agent_a = env.join(A_HZ, r.json["token"], muted=True)  # publishes a muted track, sends nothing
    env.legs.wait_answered(customer)  # answered all the same
    assert env.row(Call, call.id).status == "active"
    heard = listen(env, TONES, {}, {"customer": customer})
    assert heard["customer"].fraction(A_HZ) < 0.05  # muted means muted
    env.loop.run(agent_a.unmute())
    heard = listen(env, TONES, {"alice": (agent_a, remote(env, agent_a, sip_role("customer"), "the caller"))}, {"customer": customer})
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "the caller hearing Agent A once unmuted")
    assert_hears(heard["alice"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent A hearing the caller")


@pytest.mark.app_settings(AGENT_ANSWER_TIMEOUT_S=5)
def test_a_caller_who_waits_longer_than_the_ringing_timeout_reaches_the_second_agent(live_env):
    """Alice never answers. After 5 s the call is back in the queue and hold audio answers the
    caller's leg, before LiveKit SIP's 8 s ringing timeout; the next agent, Bob, only logs in after
    12 s, and the caller, on the same leg, is connected to him."""
    env = live_env
    env.agent("alice", "Alice Archer")
    started = time.monotonic()
    caller = env.sim.call_in("+14155550123")
    call = _call(env, caller.sid)
    customer = env.legs.current("customer")
    env.wait_until(lambda: env.row(Call, call.id).status == "queued", 15, "Alice's assignment missed")
    env.legs.wait_answered(customer)
    answered_after = time.monotonic() - started
    print(f"[timing] the caller's leg was answered (by hold audio) {answered_after:.1f}s after dialling")
    heard = listen(env, TONES, {}, {"customer": customer})
    assert_hears(heard["customer"], HOLD_HZ, others(HOLD_HZ), "the caller waiting in the queue")
    while time.monotonic() - started < RINGING_S + 4:
        time.sleep(0.2)  # the caller waits past the ringing timeout: nothing may happen to them
    assert not customer.ended.is_set() and env.legs.current("customer") is customer
    b = env.agent("bob", "Bob Baker")  # logging in takes the waiting call
    assert env.row(Call, call.id).agent_id == "bob"
    agent_b = env.join(B_HZ, b.post("/api/token", {"session_id": call.id}).json["token"])
    bob_hears = remote(env, agent_b, sip_role("customer"), "the caller, for Bob")
    heard = listen(env, TONES, {"bob": (agent_b, bob_hears)}, {"customer": customer})
    assert_hears(heard["customer"], B_HZ, others(B_HZ), "the caller hearing Bob")
    assert_hears(heard["bob"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Bob hearing the caller")
    assert env.row(Call, call.id).status == "active" and len(caller.dials) == 1


@pytest.mark.no_worker
def test_without_hold_audio_a_leg_livekit_sip_gives_up_on_goes_back_to_the_hold_loop(live_env):
    """No worker plays hold audio (it is down): nobody publishes in the room, so after RINGING_S
    livekit-sip rejects the leg with 486. The caller is not dropped: Twilio's dial action sends
    them back to the hold loop, and they are bridged again when it comes round."""
    env = live_env
    a = env.agent("alice", "Alice Archer")
    caller = env.sim.call_in("+14155550123")
    call = _call(env, caller.sid)
    customer = env.legs.current("customer")
    env.legs.wait_ended(customer, RINGING_S + 10)
    ended = customer.phone.wait_ended(5)
    assert ended["code"] == 486 and ended["connected_s"] == 0, ended
    env.wait_until(lambda: caller.parked, 10, "the caller back in the hold loop")
    assert not caller.ended and [s.kind for s in caller.steps[-3:]] == ["say", "play", "redirect"]
    stored = env.row(Call, call.id)
    assert (stored.status, stored.bridge_status, stored.sip_response_code, stored.in_hold_loop) == ("ringing", "busy", 486, True)
    caller.resume()  # the round of hold music is over: /twilio/voice bridges them again
    again = env.legs.current("customer")
    assert again is not customer
    agent_a = env.join(A_HZ, a.post("/api/token", {"session_id": call.id}).json["token"])
    env.legs.wait_answered(again)
    heard = listen(env, TONES, {}, {"customer": again})
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "the caller with Alice after the second bridge")
    assert agent_a is not None
