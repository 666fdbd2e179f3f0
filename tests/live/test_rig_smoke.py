"""Smoke test of the live rig: a real SIP call reaches a LiveKit room and audio flows both ways.

    phone (pjsua2, 440 Hz) --SIP/TCP + digest + X-WT-* headers--> livekit-sip
        --callee dispatch rule, empty prefix--> room `call_test` <--WebRTC-- agent (livekit SDK, 1000 Hz)

Asserted: the agent hears 440 Hz and not its own 1000 Hz; the phone hears 1000 Hz and not its
own 440 Hz; the SIP participant carries the X-WT-* header values as attributes (trunk
headers_to_attributes); livekit-server delivered signed webhooks for it; hang-up removes it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from livekit import api, rtc
from livekit.protocol import sip as sip_proto

from tests.aio import run_async
from tests.live.audio import analyse, assert_hears, read_wav, write_tone_wav
from tests.live.participant import ToneParticipant
from tests.live.sip_phone import SipPhone

pytestmark = pytest.mark.live

PHONE_HZ = 440.0
AGENT_HZ = 1000.0
ROOM = "call_test"
TRUNK_USER = "wt-rig-user"
TRUNK_PASSWORD = "wt-rig-password-0123456789"
HEADERS = {"X-WT-Call": "test", "X-WT-Role": "customer"}
HEADER_ATTRIBUTES = {"X-WT-Call": "wt_call", "X-WT-Role": "wt_role"}
LISTEN_S = 3.0


async def provision(lk: api.LiveKitAPI) -> tuple[str, str]:
    """Inbound trunk (digest auth, X-WT-* -> attributes) + callee rule with an empty prefix."""
    trunk = await lk.sip.create_inbound_trunk(sip_proto.CreateSIPInboundTrunkRequest(
        trunk=sip_proto.SIPInboundTrunkInfo(
            name="wt-rig-smoke", auth_username=TRUNK_USER, auth_password=TRUNK_PASSWORD,
            headers_to_attributes=HEADER_ATTRIBUTES)))
    rule = await lk.sip.create_dispatch_rule(sip_proto.CreateSIPDispatchRuleRequest(
        dispatch_rule=sip_proto.SIPDispatchRuleInfo(
            name="wt-rig-smoke-callee", trunk_ids=[trunk.sip_trunk_id],
            rule=sip_proto.SIPDispatchRule(
                dispatch_rule_callee=sip_proto.SIPDispatchRuleCallee(room_prefix="", randomize=False)))))
    trunks = await lk.sip.list_inbound_trunk(sip_proto.ListSIPInboundTrunkRequest())
    stored = {t.sip_trunk_id: t for t in trunks.items}[trunk.sip_trunk_id]
    assert dict(stored.headers_to_attributes) == HEADER_ATTRIBUTES
    assert stored.auth_username == TRUNK_USER
    rules = await lk.sip.list_dispatch_rule(sip_proto.ListSIPDispatchRuleRequest())
    stored_rule = {r.sip_dispatch_rule_id: r for r in rules.items}[rule.sip_dispatch_rule_id]
    assert stored_rule.rule.WhichOneof("rule") == "dispatch_rule_callee"
    assert stored_rule.rule.dispatch_rule_callee.room_prefix == ""
    return trunk.sip_trunk_id, rule.sip_dispatch_rule_id


async def unprovision(lk: api.LiveKitAPI, trunk_id: str, rule_id: str) -> None:
    await lk.sip.delete_dispatch_rule(sip_proto.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))
    await lk.sip.delete_trunk(sip_proto.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))


def agent_token(rig, identity: str, room: str) -> str:
    return (api.AccessToken(rig.livekit.api_key, rig.livekit.api_secret)
            .with_identity(identity).with_name(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .to_jwt())


def is_sip(p: rtc.RemoteParticipant) -> bool:
    return p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP


async def scenario(rig, workdir: Path) -> dict:
    phone_wav = write_tone_wav(workdir / "phone-440.wav", PHONE_HZ)
    phone_heard = workdir / "phone-heard.wav"
    timings: dict[str, float] = {}
    async with api.LiveKitAPI(rig.livekit.http_url, rig.livekit.api_key, rig.livekit.api_secret) as lk:
        trunk_id, rule_id = await provision(lk)
        agent = ToneParticipant(AGENT_HZ)
        phone = None
        try:
            await agent.join(rig.livekit.ws_url, agent_token(rig, "agent-a", ROOM))
            t_dial = time.monotonic()
            # The X-WT-* headers ride in the URI, as in the <Dial><Sip> URI the app gives Twilio.
            query = "&".join(f"{k}={v}" for k, v in HEADERS.items())
            phone = SipPhone.dial(
                f"{rig.sip.uri(ROOM)}?{query}", username=TRUNK_USER, password=TRUNK_PASSWORD,
                play_wav=phone_wav, record_wav=phone_heard, log_path=workdir / "phone.log")
            await asyncio.to_thread(phone.wait_state, "CONFIRMED", 20)
            timings["dial_to_answer_s"] = time.monotonic() - t_dial
            await asyncio.to_thread(phone.wait_media, 10)

            sip_p = await agent.wait_participant(is_sip, 15, "SIP participant in the room")
            attrs = await agent.wait_for(
                lambda: sip_p.attributes if sip_p.attributes.get("wt_call") else None,
                10, "X-WT-* attributes on the SIP participant")
            heard_by_agent = await agent.record(sip_p.identity, LISTEN_S, timeout=20)
            timings["dial_to_heard_s"] = time.monotonic() - t_dial

            ended = await asyncio.to_thread(phone.hangup, 15)
            await agent.wait_for(lambda: sip_p.identity not in agent.room.remote_participants,
                                 15, "SIP participant leaving after BYE")
        finally:
            if phone is not None:
                await asyncio.to_thread(phone.close)
            await agent.leave()
            await unprovision(lk, trunk_id, rule_id)
    return {"sip_identity": sip_p.identity, "attrs": dict(attrs), "heard_by_agent": heard_by_agent,
            "ended": ended, "phone_heard": phone_heard, "timings": timings}


def test_sip_call_reaches_room_and_audio_flows_both_ways(live_rig, webhook_sink, tmp_path):
    t0 = time.monotonic()
    result = run_async(lambda: scenario(live_rig, tmp_path))

    # The agent (WebRTC) hears the phone's tone, not its own.
    agent_report = analyse(result["heard_by_agent"], 48000, [PHONE_HZ, AGENT_HZ])
    assert_hears(agent_report, PHONE_HZ, [AGENT_HZ], "agent hearing the SIP phone")

    # The phone (SIP/G.711) hears the agent's tone, not its own. Its recording starts when
    # media starts; judge the last LISTEN_S seconds, when the agent was surely subscribed.
    assert result["ended"]["by_us"] is True
    samples, rate = read_wav(result["phone_heard"])
    assert samples.size >= LISTEN_S * rate, f"phone recorded only {samples.size / rate:.2f}s"
    phone_report = analyse(samples[-int(LISTEN_S * rate):], rate, [PHONE_HZ, AGENT_HZ])
    assert_hears(phone_report, AGENT_HZ, [PHONE_HZ], "SIP phone hearing the agent")

    # Headers -> attributes, and the callee rule put the call in the room named by the URI user.
    attrs = result["attrs"]
    assert attrs["wt_call"] == HEADERS["X-WT-Call"], attrs
    assert attrs["wt_role"] == HEADERS["X-WT-Role"], attrs
    assert attrs.get("sip.trunkID"), attrs

    # livekit-server's signed webhooks reached the configured URL and verify with the keys.
    receiver = api.WebhookReceiver(api.TokenVerifier(live_rig.livekit.api_key, live_rig.livekit.api_secret))

    def sip_joined(request):
        event = receiver.receive(request.body, request.authorization)
        if (event.event == "participant_joined" and event.room.name == ROOM
                and event.participant.identity == result["sip_identity"]):
            return event
        return None

    joined = webhook_sink.wait_for(sip_joined, 10, "participant_joined for the SIP participant")
    assert dict(joined.participant.attributes).get("wt_role") == "customer"
    assert webhook_sink.requests[0].path == "/livekit/webhook"

    elapsed = time.monotonic() - t0
    print(f"\n[smoke] agent heard {agent_report}\n[smoke] phone heard {phone_report}\n"
          f"[smoke] attrs {json.dumps(attrs, sort_keys=True)}\n"
          f"[smoke] timings {json.dumps({k: round(v, 3) for k, v in result['timings'].items()})}; "
          f"test body {elapsed:.2f}s")


def test_sip_call_with_wrong_digest_password_is_rejected(live_rig, tmp_path):
    """The trunk's digest auth is enforced: a wrong password never reaches a room."""
    room = "call_rejected"

    async def attempt():
        async with api.LiveKitAPI(live_rig.livekit.http_url, live_rig.livekit.api_key,
                                  live_rig.livekit.api_secret) as lk:
            trunk_id, rule_id = await provision(lk)
            try:
                phone = SipPhone.dial(
                    live_rig.sip.uri(room), username=TRUNK_USER, password="not-the-password",
                    headers=HEADERS, play_wav=write_tone_wav(tmp_path / "tone.wav", PHONE_HZ),
                    record_wav=tmp_path / "heard.wav", log_path=tmp_path / "phone.log")
                try:
                    ended = await asyncio.to_thread(phone.wait_ended, 20)
                finally:
                    await asyncio.to_thread(phone.close)
                rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
            finally:
                await unprovision(lk, trunk_id, rule_id)
        return phone, ended, rooms

    phone, ended, rooms = run_async(attempt)
    states = [e["state"] for e in phone.events if e["event"] == "call_state"]
    assert "CONFIRMED" not in states, phone.events
    assert ended["code"] in (401, 403, 407), ended
    assert list(rooms.rooms) == [], rooms
