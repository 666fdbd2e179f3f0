"""Supervision on the live rig (issue 14), proven by what each party hears and sees.

    caller (pjsua2, 440 Hz) --Twilio sim <Dial><Sip>, real SIP--> livekit-sip --> call_<id>
    Agent A (LiveKit SDK, 1000 Hz)     supervisor Sue (LiveKit SDK, 1200 Hz), token from POST /api/supervise

- monitor: Sue hears the caller and Agent A; neither hears her (her token cannot publish), and
  her hidden participant is in no one's participant list (Agent A's client; livekit-server
  filters every participant's list the same way, livekit-sip's included).
- whisper: Sue allows only `whisper_to` (Agent A) to subscribe before publishing; Agent A hears
  her, the phone caller (livekit-sip subscribes to every audio track it may) does not.
- barge: all three hear each other.
Tokens come from the app's API only; audio is judged by frequency (tests/live/audio.py).
"""
from __future__ import annotations

import pytest

from app.models import Call, Supervision
from tests.live.app_env import HOLD_HZ
from tests.live.audio import assert_hears, assert_not_hearing, band_rms
from tests.live.listening import by_identity, listen, remote, sip_role
from tests.live.steps import A_HZ, B_HZ, CUSTOMER_HZ, answer, phone_caller

pytestmark = pytest.mark.live

SUP_HZ = 1200.0  # the supervisor's tone: apart from the caller, the agents (steps.py) and HOLD_HZ
TONES = [CUSTOMER_HZ, A_HZ, B_HZ, HOLD_HZ, SUP_HZ]
SUPERVISOR = "supervisor-sue"


def others(*heard: float) -> list[float]:
    return [f for f in TONES if f not in heard]


def assert_hears_both(report, freqs: list[float], who: str, min_band_rms: float = 500.0) -> None:
    """`who` heard each of `freqs` (mixed together, so by level, not by share of the energy)."""
    quiet = [f"{f:g} Hz at rms {band_rms(report, f):.0f}" for f in freqs if band_rms(report, f) < min_band_rms]
    assert not quiet, f"{who} should hear each of {freqs} but: " + ", ".join(quiet) + f" — {report}"


def call_with_supervisor(env, mode: str):
    """The caller answered by Alice; supervisor Sue asks the app to supervise in `mode`."""
    a, caller, call, customer = phone_caller(env)
    agent_a = answer(env, a, call, customer)
    caller_id = remote(env, agent_a, sip_role("customer"), "the caller in the customer's room")
    sue = env.agent("sue", "Sue Super")
    env.services.agents.set_role("sue", "supervisor")
    assert sue.post("/api/presence", {"status": "away"}).status_code == 200
    r = sue.post("/api/supervise", {"session_id": call.id, "mode": mode})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.json["identity"] == SUPERVISOR and r.json["room_name"] == call.room_name
    return a, call, customer, agent_a, caller_id, sue, r.json


def ended_by_leaving(env, supervision_id: str) -> None:
    """livekit-server's participant_left webhook for the supervisor ends the supervision."""
    row = env.wait_until(lambda: (s := env.row(Supervision, supervision_id)).ended_at and s, 15, "the supervision ended by its webhook")
    assert row.end_reason == "left"


def test_monitor_hears_both_and_is_neither_heard_nor_seen(live_env):
    env = live_env
    a, call, customer, agent_a, caller_id, sue, grant = call_with_supervisor(env, "monitor")
    monitor = env.join(SUP_HZ, grant["token"], publish=False)
    remote(env, monitor, by_identity(caller_id), "the caller, heard by the monitor")
    remote(env, monitor, by_identity("agent-alice"), "Agent A, heard by the monitor")
    assert SUPERVISOR in env.identities(call.room_name)  # in the room, as livekit-server says

    heard = listen(env, TONES, {"sue<-caller": (monitor, caller_id), "sue<-alice": (monitor, "agent-alice"),
                                "alice<-caller": (agent_a, caller_id)}, {"customer": customer})
    assert_hears(heard["sue<-caller"], CUSTOMER_HZ, others(CUSTOMER_HZ), "the monitor hearing the phone caller")
    assert_hears(heard["sue<-alice"], A_HZ, others(A_HZ), "the monitor hearing Agent A")
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "the phone caller hearing Agent A only")
    assert_not_hearing(heard["customer"], [SUP_HZ], "the phone caller")
    assert_hears(heard["alice<-caller"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent A hearing the caller only")
    assert SUPERVISOR not in agent_a.visible_identities() and SUPERVISOR not in agent_a.heard
    assert caller_id in agent_a.visible_identities()
    assert not monitor.room.local_participant.track_publications  # nothing to hear

    # Nobody was told; the timeline records it.
    assert [n for n in a.notifications() if n["type"].startswith("supervision_")] == []
    env.leave(monitor)
    ended_by_leaving(env, grant["supervision"]["id"])
    assert env.row(Call, call.id).status == "active"  # a supervisor leaving is not an agent leaving


def test_whisper_reaches_the_agent_and_not_the_phone_caller(live_env):
    env = live_env
    a, call, customer, agent_a, caller_id, sue, grant = call_with_supervisor(env, "whisper")
    assert grant["whisper_to"] == ["agent-alice"]
    whisper = env.join(SUP_HZ, grant["token"], subscribers=grant["whisper_to"])
    remote(env, agent_a, by_identity(SUPERVISOR), "the whisper, heard by Agent A")
    remote(env, whisper, by_identity(caller_id), "the caller, heard by the supervisor")

    heard = listen(env, TONES, {"alice<-sue": (agent_a, SUPERVISOR), "alice<-caller": (agent_a, caller_id),
                                "sue<-caller": (whisper, caller_id)}, {"customer": customer})
    assert_hears(heard["alice<-sue"], SUP_HZ, others(SUP_HZ), "Agent A hearing the supervisor's whisper")
    assert_hears(heard["alice<-caller"], CUSTOMER_HZ, others(CUSTOMER_HZ), "Agent A still hearing the caller")
    assert_hears(heard["sue<-caller"], CUSTOMER_HZ, others(CUSTOMER_HZ), "the supervisor hearing the caller")
    # livekit-sip subscribes to every audio track in the room for the caller's mix; the server
    # refused it this one, so the caller hears Agent A and never the whisper.
    assert_hears(heard["customer"], A_HZ, others(A_HZ), "the phone caller hearing Agent A")
    assert_not_hearing(heard["customer"], [SUP_HZ], "the phone caller (whispered past)")
    assert [n["payload"]["mode"] for n in a.notifications() if n["type"] == "supervision_started"] == ["whisper"]

    ended = sue.post("/api/supervise/end", {"session_id": call.id})
    assert ended.status_code == 200 and ended.json["supervision"]["end_reason"] == "ended"
    env.wait_until(lambda: SUPERVISOR not in env.identities(call.room_name), 15, "the supervisor removed by the worker")
    env.leave(whisper)
    assert env.row(Call, call.id).status == "active"


def test_barge_all_three_hear_each_other(live_env):
    env = live_env
    a, call, customer, agent_a, caller_id, sue, grant = call_with_supervisor(env, "barge")
    barge = env.join(SUP_HZ, grant["token"])
    remote(env, agent_a, by_identity(SUPERVISOR), "the supervisor, heard by Agent A")
    remote(env, barge, by_identity(caller_id), "the caller, heard by the supervisor")
    remote(env, barge, by_identity("agent-alice"), "Agent A, heard by the supervisor")

    heard = listen(env, TONES, {"alice<-sue": (agent_a, SUPERVISOR), "sue<-caller": (barge, caller_id),
                                "sue<-alice": (barge, "agent-alice")}, {"customer": customer})
    assert_hears(heard["alice<-sue"], SUP_HZ, others(SUP_HZ), "Agent A hearing the supervisor")
    assert_hears(heard["sue<-caller"], CUSTOMER_HZ, others(CUSTOMER_HZ), "the supervisor hearing the caller")
    assert_hears(heard["sue<-alice"], A_HZ, others(A_HZ), "the supervisor hearing Agent A")
    assert_hears_both(heard["customer"], [A_HZ, SUP_HZ], "the phone caller (Agent A and the supervisor)")
    assert_not_hearing(heard["customer"], [B_HZ, HOLD_HZ], "the phone caller")
    assert SUPERVISOR in agent_a.visible_identities()
    assert [n["payload"]["mode"] for n in a.notifications() if n["type"] == "supervision_started"] == ["barge"]
    env.leave(barge)
    ended_by_leaving(env, grant["supervision"]["id"])
    assert env.row(Call, call.id).status == "active"
