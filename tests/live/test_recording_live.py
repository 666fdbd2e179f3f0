"""Recording on the live rig (RECORDING_ENABLED): a phone caller over real SIP is warm-transferred
from Agent A to dashboard Agent B and the transfer completes; the caller's one Twilio leg (and its
one recorded `<Dial>`) lives through all of it, so exactly one recording callback arrives, for the
caller's CallSid, once the bridge ends, and the call row stores it. Agent B, who took part, hears
it through the app.

The simulator cannot make audio from the SIP leg; it reports the recording as Twilio would (the
signed recordingStatusCallback, Twilio's parameter names) and serves stand-in media.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Call, Recording, Transfer
from tests.live.steps import B_HZ, answer, consult_with_dashboard_b, phone_caller

pytestmark = pytest.mark.live

NOTICE = "This call is recorded."


@pytest.mark.app_settings(RECORDING_ENABLED=True, RECORDING_NOTICE=NOTICE)
def test_one_recording_of_the_caller_across_a_completed_transfer(live_env):
    env = live_env
    a, caller, call, customer = phone_caller(env)
    assert caller.says[0] == NOTICE
    dial = next(s for s in caller.steps if s.kind == "dial")
    assert dial.attrs["record"] == "record-from-answer-dual"
    agent_a = answer(env, a, call, customer)

    b, transfer, agent_a, agent_b = consult_with_dashboard_b(env, a, call.id, agent_a)
    assert a.post("/api/complete-transfer", {"transfer_id": transfer["id"]}).status_code == 200
    r = b.post("/api/token", {"session_id": call.id})
    assert r.status_code == 200 and r.json["room_name"] == call.room_name
    env.leave(agent_b)
    agent_b = env.join(B_HZ, r.json["token"])
    env.leave(agent_a)
    assert a.post("/api/agent-exit-room", {"session_id": call.id}).status_code == 200
    env.wait_until(lambda: env.row(Transfer, transfer["id"]).bridged_at, 15, "Agent B in the customer's room")
    env.sim.deliver()
    assert env.sim.recording_callbacks() == [] and not env.sim.recordings  # the caller's dial is still up

    caller.hang_up()
    env.sim.deliver()
    env.sim.deliver()  # anything a webhook answered with (the room's end) queued meanwhile
    callbacks = env.sim.recording_callbacks()
    assert len(callbacks) == 1, [d.params for d in callbacks]
    params = callbacks[0].params
    assert params["CallSid"] == caller.sid and params["RecordingChannels"] == "2" and params["RecordingStatus"] == "completed"
    assert callbacks[0].url.endswith("/twilio/recording")

    with env.services.db.reading() as s:
        stored = list(s.scalars(select(Recording).where(Recording.call_id == call.id)))
    assert [(r.sid, r.status, r.channels, r.duration_s) for r in stored] == [
        (params["RecordingSid"], "completed", 2, int(params["RecordingDuration"]))]
    assert env.row(Call, call.id).status == "completed"
    detail = b.get(f"/api/calls/{call.id}").json["call"]
    assert detail["recording"]["status"] == "completed"
    audio = b.get(f"/api/calls/{call.id}/recording")
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert audio.data == env.sim.recordings[params["RecordingSid"]].body(".mp3")
    env.leave(agent_b)
