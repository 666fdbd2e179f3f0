"""Phone customers through the Twilio simulator: bridged into LiveKit, held, hung up, transcribed."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from app import outbox
from app.models import Call, ContextEntry
from tests.support import call_status
from tests.telephony import PUBLIC, SIP_HOST, SIP_PASSWORD, SIP_USER, TELEPHONY, agent_on, last, make_sim, types

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)


def _call_row(services, sid: str) -> Call:
    with services.db.reading() as s:
        return s.scalar(select(Call).where(Call.twilio_call_sid == sid))


def test_inbound_call_is_assigned_and_bridged_into_its_room(sim, make_agent, services, livekit_double, tasks):
    a = make_agent("alice", "Alice Archer")
    caller = sim.call_in("+14155550123")

    call = _call_row(services, caller.sid)
    assert call.channel == "phone" and call.caller_number == "+14155550123" and call.agent_id == "alice"
    assert call.status == "ringing" and call.room_name == f"call_{call.id}"
    # The webhook did not wait on LiveKit: the worker creates the room (LiveKit would also
    # create it when the SIP leg arrives).
    assert livekit_double.calls("CreateRoom") == []
    tasks()
    (created,) = livekit_double.calls("CreateRoom")
    assert created.request.name == call.room_name and call.room_name in livekit_double.rooms
    assigned = last(a, "call_assigned")
    assert assigned["session_id"] == call.id and assigned["channel"] == "phone" and assigned["caller_number"] == "+14155550123"

    assert caller.kinds() == ["say", "dial"] and caller.says == ["Thank you for calling. Connecting you to an agent."]
    dial = caller.steps[1].attrs
    assert dial == {"action": f"{PUBLIC}/twilio/dial-action", "method": "POST", "answerOnBridge": "true", "timeout": "600"}
    leg = caller.sip
    assert leg.base == f"sip:{call.room_name}@{SIP_HOST};transport=tcp"
    assert leg.room == call.room_name and leg.params == {"transport": "tcp"}
    assert leg.headers == {"X-WT-Call": call.id, "X-WT-Role": "customer"}
    assert (leg.username, leg.password) == (SIP_USER, SIP_PASSWORD)
    assert not any(h.lower().startswith("x-twilio") for h in leg.headers)

    # The agent joins from the dashboard: the call is active.
    assert a.post("/api/token", {"session_id": call.id}).json["room_name"] == call.room_name
    assert call_status(a, call.id) == "active"


def test_twilio_retrying_the_voice_webhook_creates_nothing_twice(sim, make_agent, services, livekit_double, tasks):
    make_agent("alice")
    caller = sim.call_in()
    again = sim.post(sim.voice_url, dict(sim.base_params(caller), CallStatus="ringing"))
    assert again.status_code == 200 and again.mimetype == "text/xml"
    assert caller.sip.uri in again.get_data(as_text=True).replace("&amp;", "&")
    tasks()
    assert len(livekit_double.calls("CreateRoom")) == 1
    with services.db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 1


def test_caller_waits_on_hold_until_an_agent_is_free(sim, make_agent, services, client, tasks):
    caller = sim.call_in("+442071838750")
    call = _call_row(services, caller.sid)
    assert call.status == "queued" and call.agent_id is None and call.customer_name == "Caller +442071838750"
    # Hold music, not dead air, between the messages.
    assert caller.kinds() == ["say", "play", "redirect"] and "busy" in caller.says[0]
    music = caller.steps[1].text
    assert music == f"{PUBLIC}/media/hold-music.wav"
    served = client.get("/media/hold-music.wav")
    assert served.status_code == 200 and served.mimetype == "audio/wav" and served.data[:4] == b"RIFF"
    assert caller.parked == f"{PUBLIC}/twilio/voice?held=1" and caller.sip is None

    caller.resume()  # still nobody: held again, with a shorter reminder
    assert caller.kinds()[-3:] == ["say", "play", "redirect"] and caller.parked
    assert caller.says[-1] == "Thank you for holding."

    a = make_agent("alice")  # logging in takes the waiting call...
    assert last(a, "call_assigned")["session_id"] == call.id
    tasks()  # ...and the worker fetches the caller out of the music at once, not at its next round
    (redirect,) = sim.rest_calls("update")
    assert redirect.fields() == {"Url": f"{PUBLIC}/twilio/voice?held=1", "Method": "POST"}
    assert caller.says[-1] == "Thank you for waiting. Connecting you to an agent now."
    assert caller.sip is not None and caller.sip.headers["X-WT-Call"] == call.id and caller.parked is None


def test_caller_hanging_up_in_the_queue_abandons_the_call(sim, services, livekit_double, make_agent, tasks):
    caller = sim.call_in()
    call = _call_row(services, caller.sid)
    caller.hang_up()
    sim.deliver()
    assert _call_row(services, caller.sid).status == "abandoned"
    tasks()
    assert call.room_name not in livekit_double.rooms
    assert "call_assigned" not in types(make_agent("alice"))


def test_caller_hanging_up_mid_call_ends_it_once(sim, make_agent, services, livekit_double, tasks):
    a = make_agent("alice")
    caller = sim.call_in()
    call = _call_row(services, caller.sid)
    a.post("/api/token", {"session_id": call.id})
    caller.hang_up()  # Twilio requests the dial action with CallStatus=completed
    assert _call_row(services, caller.sid).status == "completed"
    delivered = sim.deliver()  # and the number's status callback, completed
    sim.redeliver(delivered)
    assert [n["payload"]["reason"] for n in a.notifications() if n["type"] == "call_ended"] == ["customer_hung_up"]
    assert a.get("/api/me").json["agent"]["busy"] is False
    tasks()
    assert call.room_name not in livekit_double.rooms


def test_agent_ending_the_call_says_goodbye_to_the_caller(sim, make_agent, services):
    a = make_agent("alice")
    caller = sim.call_in()
    call = _call_row(services, caller.sid)
    assert a.post("/api/end-call", {"session_id": call.id}).status_code == 200
    caller.end_dial("completed")  # LiveKit hung up the SIP leg when the room was deleted
    assert caller.says[-1] == "Thank you for calling. Goodbye." and caller.kinds()[-1] == "hangup"
    sim.deliver()
    assert _call_row(services, caller.sid).status == "completed" and _call_row(services, caller.sid).end_reason == "agent_ended"


def test_a_bridge_that_never_connects_fails_the_call_with_an_apology_and_says_why(sim, make_agent, services):
    a = make_agent("alice")
    sim.sip_legs.fail_next("failed", 407)  # LiveKit SIP refused the trunk credentials
    caller = sim.call_in()
    call = _call_row(services, caller.sid)
    assert call.status == "failed" and call.end_reason == "sip_bridge_failed"
    assert (call.bridge_status, call.sip_response_code) == ("failed", 407)
    assert "lost the connection" in caller.says[-1] and caller.ended
    ended = last(a, "call_ended")
    assert ended["status"] == "failed" and ended["sip_response_code"] == 407
    assert "rejected the credentials" in ended["detail"] and "(SIP 407)" in ended["detail"]
    assert a.get("/api/me").json["agent"]["busy"] is False


def test_a_caller_livekit_sip_gave_up_on_goes_back_to_the_hold_loop_not_away(sim, make_agent, services, client):
    """LiveKit SIP rejects a leg that rang past its ringing timeout (486: Twilio reports busy);
    nobody has talked to the caller yet, so they hear hold music and are bridged again."""
    a = make_agent("alice")
    caller = sim.call_in()
    caller.end_dial("busy", 486)
    call = _call_row(services, caller.sid)
    assert call.status == "ringing" and call.agent_id == "alice" and not caller.ended
    assert (call.bridge_status, call.sip_response_code, call.in_hold_loop) == ("busy", 486, True)
    assert caller.kinds()[-3:] == ["say", "play", "redirect"] and caller.parked
    caller.resume()
    assert caller.sip is not None and caller.says[-1] == "Thank you for waiting. Connecting you to an agent now."
    assert _call_row(services, caller.sid).in_hold_loop is False
    assert a.post("/api/token", {"session_id": call.id}).status_code == 200


def test_transcription_stores_final_utterances_once_by_track(make_app, rest):
    application = make_app(**TELEPHONY, TRANSCRIPTION_ENABLED=True)
    sim = make_sim(application, rest)
    services = application.extensions["wt"]
    a = agent_on(application, "alice")
    caller = sim.call_in()
    assert caller.kinds()[:2] == ["transcription", "say"]
    assert caller.transcription == {
        "statusCallbackUrl": f"{PUBLIC}/twilio/transcription",
        "statusCallbackMethod": "POST",
        "track": "both_tracks",
        "inboundTrackLabel": "customer",
        "outboundTrackLabel": "agent",
        "partialResults": "false",
        "enableAutomaticPunctuation": "true",
    }
    call = _call_row(services, caller.sid)
    # What the caller hears before an agent talks to them is ours, not an agent's: the greeting
    # (spoken on the outbound track), and later hold music; neither is stored as the agent.
    caller.transcribe("Thank you for calling. Connecting you to an agent.", track="outbound_track", sequence=1)
    caller.transcribe("la la la", track="outbound_track", sequence=2)
    assert a.post("/api/token", {"session_id": call.id}).status_code == 200  # Alice answers
    caller.transcribe("Thank you for calling! Connecting you to an agent", track="outbound_track", sequence=3)  # a late final

    for response in (
        caller.transcribe("", event="transcription-started"),
        caller.transcribe("My card was declin", final=False, sequence=1),
        caller.transcribe("My card 4111 1111 1111 1111 was declined.", sequence=3),
        caller.transcribe("Sorry to hear that.", track="outbound_track", sequence=4),
        caller.transcribe("Hello, I need help.", sequence=2),  # late: out of order
        caller.transcribe("My card 4111 1111 1111 1111 was declined.", sequence=3),  # redelivered
        caller.transcribe("", event="transcription-error"),
        caller.transcribe("", event="transcription-stopped"),
    ):
        assert response.status_code == 200 and response.mimetype == "text/xml"
    bad = dict(sim.base_params(caller), TranscriptionEvent="transcription-content", Final="true", TranscriptionData="{not json", SequenceId="9", TranscriptionSid=caller.transcription_sid)
    assert sim.post(f"{PUBLIC}/twilio/transcription", bad).status_code == 200
    # JSON-bodied deliveries are signed through bodySHA256 and accepted the same way.
    as_json = dict(sim.base_params(caller), TranscriptionEvent="transcription-content", Final="true", Track="inbound_track",
                   TranscriptionData='{"transcript": "Can you hurry?", "confidence": 0.9}', SequenceId="5", TranscriptionSid=caller.transcription_sid)
    assert sim.post_json(f"{PUBLIC}/twilio/transcription", as_json).status_code == 200

    with services.db.reading() as s:
        rows = list(s.scalars(select(ContextEntry).where(ContextEntry.call_id == call.id, ContextEntry.source == "transcript").order_by(ContextEntry.id)))
    assert [(r.author, r.text) for r in rows] == [
        ("customer", "My card [card ending 1111] was declined."),
        ("alice", "Sorry to hear that."),
        ("customer", "Hello, I need help."),
        ("customer", "Can you hurry?"),
    ]
    added = [n["payload"]["entry"]["text"] for n in a.notifications() if n["type"] == "context_added"]
    assert added == [r.text for r in rows]


def test_webhook_failures_still_answer_valid_twiml(sim, services, monkeypatch, livekit_double, make_agent, tasks):
    make_agent("alice")
    livekit_double.fail_next("CreateRoom", 503, "unavailable", "overloaded")
    caller = sim.call_in()  # LiveKit is failing, but the webhook never asked it anything
    assert caller.kinds() == ["say", "dial"] and caller.sip is not None
    tasks()  # the worker's attempt fails and is retried later (LiveKit also creates the room on join)
    (pending,) = [t for t in outbox.list_tasks(services.db) if t.kind == "livekit.create_room"]
    assert pending.state == "pending" and pending.attempts == 1 and "overloaded" in pending.last_error
    tasks(after_s=5)
    assert [t.state for t in outbox.list_tasks(services.db) if t.kind == "livekit.create_room"] == ["done"]

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services.telephony, "inbound", broken)
    response = sim.post(sim.voice_url, dict(sim.base_params(caller), CallSid="CA" + "9" * 32))
    root = ET.fromstring(response.get_data())
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert [el.tag for el in root] == ["Say", "Hangup"] and "Traceback" not in response.get_data(as_text=True)


def test_without_livekit_sip_callers_hear_an_apology_and_no_call_is_made(make_app, rest):
    application = make_app(**dict(TELEPHONY, LIVEKIT_SIP_HOST="", LIVEKIT_SIP_USERNAME="", LIVEKIT_SIP_PASSWORD=""))
    caller = make_sim(application, rest).call_in()
    assert "something went wrong" in caller.says[0]
    with application.extensions["wt"].db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0
