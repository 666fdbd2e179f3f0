"""Recording phone calls (RECORDING_ENABLED): the caller's `<Dial>` records both sides from answer,
Twilio's signed recording callback stores the recording once however often it comes, agents who
took part hear it through the app (never a Twilio URL), and retention deletes it at Twilio and here.

Driven through the Twilio simulator: it records a `<Dial record>` that was answered when the dial
ends, queues the recording callback with Twilio's parameter names, and serves the media and the
DELETE over its REST half (basic auth required, as Twilio does)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from app.errors import TwilioUnavailable
from app.models import Call, Recording, utcnow
from app.services import retention
from app.worker.runner import ensure_periodic
from tests.doubles.twilio_sim import API
from tests.support import run_tasks, start_call
from tests.telephony import AUTH_TOKEN, PUBLIC, TELEPHONY, agent_on, make_sim

NOTICE = "This call is recorded for quality & training."
RECORDED = dict(TELEPHONY, RECORDING_ENABLED=True, RECORDING_NOTICE=NOTICE)
CALLBACK = PUBLIC + "/twilio/recording"


@pytest.fixture
def app(make_app, rest):
    return make_app(**RECORDED)


@pytest.fixture
def services(app):
    return app.extensions["wt"]


@pytest.fixture
def sim(app, rest):
    return make_sim(app, rest)


def _call_of(services, caller) -> Call:
    with services.db.reading() as s:
        return s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))


def _recordings(services) -> list[Recording]:
    with services.db.reading() as s:
        return list(s.scalars(select(Recording).order_by(Recording.created_at)))


def _answered_call(app, sim):
    alice = agent_on(app, "alice")
    caller = sim.call_in()
    call = _call_of(app.extensions["wt"], caller)
    assert alice.post("/api/token", {"session_id": call.id}).status_code == 200
    return alice, caller, call


def _recorded_call(app, sim):
    """Alice talks to a phone caller who then hangs up; Twilio's callbacks are delivered."""
    alice, caller, call = _answered_call(app, sim)
    caller.hang_up()
    sim.deliver()
    return alice, caller, call


# -- TwiML ------------------------------------------------------------------------------------------
def test_the_notice_comes_first_and_the_dial_records_both_sides_from_answer(app, sim):
    agent_on(app, "alice")
    caller = sim.call_in()
    assert caller.says[0] == NOTICE  # before the greeting, before anything is recorded
    dial = next(s for s in caller.steps if s.kind == "dial")
    assert dial.attrs["record"] == "record-from-answer-dual"
    assert dial.attrs["recordingStatusCallback"] == CALLBACK
    assert dial.attrs["recordingStatusCallbackMethod"] == "POST"
    assert dial.attrs["recordingStatusCallbackEvent"] == "completed absent"


def test_without_recording_enabled_nothing_is_recorded_or_said(make_app, rest):
    application = make_app(**TELEPHONY)
    sim = make_sim(application, rest)
    agent_on(application, "alice")
    caller = sim.call_in()
    assert NOTICE not in caller.says
    dial = next(s for s in caller.steps if s.kind == "dial")
    assert "record" not in dial.attrs and "recordingStatusCallback" not in dial.attrs
    caller.hang_up()
    sim.deliver()
    assert sim.recordings == {} and _recordings(application.extensions["wt"]) == []


# -- the callback -----------------------------------------------------------------------------------
def test_the_callback_stores_the_recording_once_however_often_twilio_sends_it(app, sim, services):
    alice, caller, call = _recorded_call(app, sim)
    callbacks = sim.recording_callbacks()
    assert len(callbacks) == 1 and callbacks[0].url == CALLBACK
    params = callbacks[0].params
    assert params["CallSid"] == caller.sid and params["RecordingSource"] == "DialVerb"
    sim.redeliver(callbacks)  # Twilio retries
    sim.redeliver(callbacks)
    [stored] = _recordings(services)
    assert (stored.sid, stored.call_id, stored.status, stored.channels) == (params["RecordingSid"], call.id, "completed", 2)
    assert stored.duration_s == int(params["RecordingDuration"]) and stored.started_at is not None


def test_a_late_in_progress_callback_does_not_undo_a_completed_recording(app, sim, services):
    _recorded_call(app, sim)
    [delivered] = sim.recording_callbacks()
    late = dict(delivered.params, RecordingStatus="in-progress", RecordingDuration="-1")
    assert sim.post(CALLBACK, late).status_code == 200
    [stored] = _recordings(services)
    assert stored.status == "completed" and stored.duration_s == int(delivered.params["RecordingDuration"])


def test_an_absent_recording_is_stored_as_such_and_cannot_be_played(app, sim, services):
    alice, caller, call = _answered_call(app, sim)
    caller.hang_up()
    sim.pending = [(u, dict(p, RecordingStatus="absent", RecordingDuration="0", ErrorCode="16101")) if "RecordingSid" in p else (u, p)
                   for u, p in sim.pending]
    sim.deliver()
    [stored] = _recordings(services)
    assert (stored.status, stored.error_code) == ("absent", "16101")
    assert alice.get(f"/api/calls/{call.id}").json["call"]["recording"] == {"status": "absent", "duration_s": 0, "channels": 2}
    r = alice.get(f"/api/calls/{call.id}/recording")
    assert r.status_code == 404 and r.json["error"]["code"] == "no_recording"


def test_the_callback_must_be_signed_by_twilio_for_its_url(app, sim, services):
    _answered_call(app, sim)[1].hang_up()
    [(url, params)] = [(u, p) for u, p in sim.pending if "RecordingSid" in p]
    for signature in ("", "bm90IGEgc2lnbmF0dXJl", sim.sign(PUBLIC + "/twilio/status", params)):
        refused = sim.post(url, params, signature=signature)
        assert refused.status_code == 403 and refused.headers["X-WT-Error"] == "invalid_signature"
    assert _recordings(services) == []  # nothing a forger sent was stored
    forged = dict(params, RecordingDuration="9999")  # signed over other values
    assert sim.post(url, forged, signature=sim.sign(url, params)).status_code == 403
    assert sim.post(url, params).status_code == 200
    assert [r.duration_s for r in _recordings(services)] == [int(params["RecordingDuration"])]


def test_a_callback_for_a_call_we_do_not_know_changes_nothing(app, sim, services):
    params = {"AccountSid": sim.account_sid, "CallSid": "CA" + "9" * 32, "RecordingSid": "RE" + "9" * 32, "RecordingStatus": "completed",
              "RecordingDuration": "12", "RecordingChannels": "2", "RecordingSource": "DialVerb", "RecordingUrl": f"{API}/x"}
    r = sim.post(CALLBACK, params)
    assert r.status_code == 200 and r.mimetype == "text/xml" and "X-WT-Error" not in r.headers
    assert _recordings(services) == []
    assert sim.post(CALLBACK, dict(params, RecordingStatus="bogus")).status_code == 200
    assert _recordings(services) == []


# -- across a completed transfer, and who may listen --------------------------------------------------
def test_one_recording_across_a_completed_transfer_and_both_agents_hear_it(app, sim, services):
    alice, caller, call = _answered_call(app, sim)
    bob, carol = agent_on(app, "bob"), agent_on(app, "carol")
    for agent in (bob, carol):
        agent.post("/api/presence", {"status": "away"})
    bob.post("/api/presence", {"status": "available"})
    r = alice.post("/api/initiate-transfer", {"session_id": call.id, "to_agent_id": "bob"})
    assert r.status_code == 201, r.get_data(as_text=True)
    transfer_id = r.json["transfer"]["id"]
    assert bob.post("/api/accept-transfer", {"transfer_id": transfer_id}).status_code == 200
    assert alice.post("/api/complete-transfer", {"transfer_id": transfer_id}).status_code == 200
    run_tasks(services)
    sim.deliver()
    assert sim.recording_callbacks() == []  # the caller's leg lives on through the hand-over
    assert bob.post("/api/token", {"session_id": call.id}).status_code == 200
    bob.post("/api/end-call", {"session_id": call.id})
    caller.end_dial("completed")  # LiveKit closes the room: the bridge ends
    sim.deliver()

    assert len(sim.recording_callbacks()) == 1 and len(sim.recordings) == 1
    [recording] = sim.recordings.values()
    detail = alice.get(f"/api/calls/{call.id}").json["call"]
    assert detail["recording"] == {"status": "completed", "duration_s": recording.duration_s, "channels": 2}
    for agent in (alice, bob):
        r = agent.get(f"/api/calls/{call.id}/recording")
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.mimetype == "audio/mpeg" and r.headers["Cache-Control"] == "private, no-store"
        assert r.data == recording.body(".mp3") and r.headers["Content-Length"] == str(len(r.data))
    # Nothing in what the browser gets points at Twilio or carries its credentials.
    page = alice.get(f"/api/calls/{call.id}").get_data(as_text=True)
    assert "twilio.com" not in page and recording.sid not in page and AUTH_TOKEN not in page
    assert carol.get(f"/api/calls/{call.id}/recording").status_code == 403
    assert app.test_client().get(f"/api/calls/{call.id}/recording").status_code == 401
    fetched = sim.rest_recordings("GET")
    assert len(fetched) == 2 and all(f.url.endswith(recording.sid + ".mp3") for f in fetched)


def test_web_calls_are_not_recorded(app, services):
    alice = agent_on(app, "alice")
    call = start_call(app.test_client(), alice)
    assert alice.get(f"/api/calls/{call['session_id']}").json["call"]["recording"] is None
    r = alice.get(f"/api/calls/{call['session_id']}/recording")
    assert r.status_code == 404 and r.json["error"]["code"] == "no_recording"


# -- streaming failures -------------------------------------------------------------------------------
def test_a_recording_still_being_processed_is_not_ready(app, sim, services):
    alice, caller, call = _answered_call(app, sim)
    caller.hang_up()
    [(url, params)] = [(u, p) for u, p in sim.pending if "RecordingSid" in p]
    assert sim.post(url, dict(params, RecordingStatus="in-progress")).status_code == 200
    r = alice.get(f"/api/calls/{call.id}/recording")
    assert r.status_code == 409 and r.json["error"]["code"] == "recording_not_ready"
    sim.deliver()
    assert alice.get(f"/api/calls/{call.id}/recording").status_code == 200


def test_twilio_failing_or_silent_is_a_503_and_a_deleted_recording_a_404(app, sim, services):
    alice, caller, call = _recorded_call(app, sim)
    sim.fail_next_media(500, 20500, "Internal Server Error")
    r = alice.get(f"/api/calls/{call.id}/recording")
    assert r.status_code == 503 and r.json["error"]["code"] == "twilio_unavailable"
    sim.timeout_next_media()
    r = alice.get(f"/api/calls/{call.id}/recording")
    assert r.status_code == 503 and r.json["error"]["code"] == "twilio_unavailable"
    [recording] = sim.recordings.values()
    recording.deleted = True  # someone deleted it in Twilio's console
    r = alice.get(f"/api/calls/{call.id}/recording")
    assert r.status_code == 404 and r.json["error"]["code"] == "no_recording"


def test_the_media_request_carries_the_account_credentials(app, sim, services):
    _recorded_call(app, sim)
    [recording] = sim.recordings.values()
    url = f"{API}/Accounts/{sim.account_sid}/Recordings/{recording.sid}.mp3"
    assert requests.get(url, timeout=2).status_code == 401  # the simulator, like Twilio, wants them
    assert requests.get(url, auth=(sim.account_sid, AUTH_TOKEN), timeout=2).status_code == 200


# -- retention ----------------------------------------------------------------------------------------
def _age(services, days: float, sid: str | None = None) -> None:
    when = utcnow() - timedelta(days=days)
    with services.db.transaction() as s:
        query = update(Recording).values(created_at=when)
        s.execute(query.where(Recording.sid == sid) if sid else query)


def test_retention_deletes_old_recordings_at_twilio_then_here(make_app, rest):
    application = make_app(**RECORDED, RECORDING_RETENTION_DAYS=30)
    services, sim = application.extensions["wt"], make_sim(application, rest)
    alice, old_caller, old_call = _recorded_call(application, sim)
    young_caller = sim.call_in("+14155550999")
    young = _call_of(services, young_caller)
    assert alice.post("/api/token", {"session_id": young.id}).status_code == 200
    young_caller.hang_up()
    sim.deliver()
    old_sid, young_sid = [d.params["RecordingSid"] for d in sim.recording_callbacks()]
    _age(services, 31, old_sid)
    _age(services, 29, young_sid)

    assert services.recordings.prune(30, 90) == 1
    assert [r.sid for r in _recordings(services)] == [young_sid]
    assert sim.recordings[old_sid].deleted and not sim.recordings[young_sid].deleted
    assert [r.url.rsplit("/", 1)[1] for r in sim.rest_recordings("DELETE")] == [old_sid + ".json"]
    r = alice.get(f"/api/calls/{old_call.id}/recording")
    assert r.status_code == 404 and r.json["error"]["code"] == "no_recording"
    assert alice.get(f"/api/calls/{old_call.id}").json["call"]["recording"] is None


def test_retention_runs_as_a_periodic_worker_job(make_app, rest):
    application = make_app(**RECORDED, RECORDING_RETENTION_DAYS=7)
    services, sim = application.extensions["wt"], make_sim(application, rest)
    _recorded_call(application, sim)
    _age(services, 8)
    ensure_periodic(services.db)  # what a worker does when it starts
    run_tasks(services)
    assert _recordings(services) == [] and all(r.deleted for r in sim.recordings.values())
    assert len(sim.rest_recordings("DELETE")) == 1


def test_a_recording_already_gone_at_twilio_counts_as_deleted(app, sim, services):
    _recorded_call(app, sim)
    [recording] = sim.recordings.values()
    recording.deleted = True  # deleted in Twilio's console: DELETE answers 404
    _age(services, 400)
    assert services.recordings.prune(365, 3650) == 1
    assert _recordings(services) == []


def test_twilio_unreachable_keeps_the_recording_for_the_next_run(app, sim, services):
    _recorded_call(app, sim)
    _age(services, 400)
    sim.fail_next_delete(503, 20503, "Service Unavailable")
    with pytest.raises(TwilioUnavailable):
        services.recordings.prune(365, 3650)
    assert len(_recordings(services)) == 1  # kept: the task is retried
    assert services.recordings.prune(365, 3650) == 1
    assert _recordings(services) == []


def test_a_call_is_pruned_only_after_its_recording_is_deleted_at_twilio(app, sim, services):
    alice, caller, call = _recorded_call(app, sim)
    long_ago = utcnow() - timedelta(days=200)
    with services.db.transaction() as s:
        s.execute(update(Call).where(Call.id == call.id).values(created_at=long_ago, ended_at=long_ago))
    assert retention.prune_calls(services.db, 90) == 0  # RECORDING_RETENTION_DAYS=0 keeps it, but not past its call
    assert services.recordings.prune(0, 90) == 1
    assert all(r.deleted for r in sim.recordings.values())
    assert retention.prune_calls(services.db, 90) == 1
    with services.db.reading() as s:
        assert s.get(Call, call.id) is None


def test_the_twiml_document_is_valid_xml_with_the_notice_escaped(app, sim):
    agent_on(app, "alice")
    r = sim.post(PUBLIC + "/twilio/voice", {"CallSid": "CA" + "7" * 32, "AccountSid": sim.account_sid, "From": "+14155550123",
                                            "To": sim.number, "CallStatus": "ringing"})
    document = r.get_data(as_text=True)
    assert "quality &amp; training" in document
    root = ET.fromstring(document)
    assert [el.tag for el in root][:2] == ["Say", "Say"] and root.find("Dial").get("record") == "record-from-answer-dual"
