"""Every way a phone transfer can end without Agent B taking the caller, each told to Agent A."""
from __future__ import annotations

import pytest

from app import outbox
from tests.support import call_status
from tests.telephony import B_PHONE, dial_b, last, phone_call_with_context, transfer_row, types

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)


@pytest.fixture
def setup(sim, make_agent, services):
    a = make_agent("alice", "Alice Archer")
    caller, call = phone_call_with_context(sim, a, services)
    return a, caller, call


def _failed(a) -> list[dict]:
    return [n["payload"] for n in a.notifications() if n["type"] in ("transfer_failed", "transfer_declined", "transfer_cancelled")]


@pytest.mark.parametrize(
    "status, extra, outcome, reason_code, error_code",
    [
        ("no-answer", {}, "no_answer", "no_answer", None),
        ("busy", {}, "busy", "busy", None),
        ("failed", {"ErrorCode": "32009", "ErrorMessage": "Your TwiML tried to Dial a number that is unreachable"}, "failed", "call_failed", "32009"),
    ],
)
def test_unanswered_outcomes(setup, sim, services, livekit_double, tasks, status, extra, outcome, reason_code, error_code):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.ring().finish(status, **extra)
    sim.deliver()
    tasks()
    (payload,) = _failed(a)
    assert (payload["outcome"], payload["reason_code"], payload["error_code"]) == (outcome, reason_code, error_code)
    if error_code:
        assert "unreachable" in payload["reason"] and error_code in payload["reason"]
    assert call_status(a, call.id) == "active"
    assert body["transfer"]["transfer_room"] not in livekit_double.rooms
    assert transfer_row(services, body["transfer"]["id"]).leg_status == status


def test_a_machine_answering_is_no_answer_and_hears_nothing(setup, sim, services):
    a, _caller, call = setup
    _body, leg = dial_b(sim, a, call.id)
    leg.answer("machine_end_beep")
    assert leg.kinds() == ["hangup"] and leg.says == []
    sim.deliver()
    (payload,) = _failed(a)
    assert payload["outcome"] == "no_answer" and payload["reason_code"] == "machine" and "machine_end_beep" in payload["reason"]
    assert call_status(a, call.id) == "active"


def test_caller_hanging_up_while_b_rings_cancels_b(setup, sim, services, tasks):
    a, caller, call = setup
    _body, leg = dial_b(sim, a, call.id)
    leg.ring()
    caller.hang_up()
    tasks()
    (cancel,) = sim.rest_calls("update")
    assert cancel.fields() == {"Status": "canceled"} and cancel.url.endswith(f"/Calls/{leg.sid}.json")
    assert leg.status == "canceled"
    sim.deliver()  # B's canceled, the caller's completed: both already handled
    payload = last(a, "transfer_failed")
    assert payload["outcome"] == "caller_left" and payload["reason_code"] == "caller_left"
    assert last(a, "call_ended")["status"] == "completed" and call_status(a, call.id) == "completed"


def test_caller_hanging_up_during_the_briefing_tells_b(setup, sim, services, livekit_double, tasks):
    a, caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.press("1").answer()
    assert leg.sip.room == body["transfer"]["transfer_room"]
    caller.hang_up()
    tasks()
    (update_req,) = sim.rest_calls("update")
    assert set(update_req.fields()) == {"Twiml"}
    assert leg.says[-1] == "The caller has hung up, so the transfer has ended. Goodbye." and leg.ended and leg.sip is None
    sim.deliver()
    assert last(a, "transfer_failed")["outcome"] == "caller_left"
    assert body["transfer"]["transfer_room"] not in livekit_double.rooms and call.room_name not in livekit_double.rooms


def test_agent_a_cancels_while_b_rings(setup, sim, services, tasks):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.ring()
    r = a.post("/api/cancel-transfer", {"transfer_id": body["transfer"]["id"]})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "cancelled"
    tasks()
    assert [u.fields() for u in sim.rest_calls("update")] == [{"Status": "canceled"}]
    sim.deliver()
    assert last(a, "transfer_cancelled")["reason_code"] == "cancelled"
    assert call_status(a, call.id) == "active"
    assert a.post("/api/token", {"session_id": call.id}).json["room_name"] == call.room_name


def test_agent_a_cancels_during_the_briefing(setup, sim, services, tasks):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.press("1").answer()
    assert a.post("/api/cancel-transfer", {"transfer_id": body["transfer"]["id"]}).status_code == 200
    tasks()
    assert [u.fields() for u in sim.rest_calls("update")] == [{"Status": "completed"}]
    assert leg.status == "completed" and leg.sip is None
    sim.deliver()
    assert call_status(a, call.id) == "active" and len(_failed(a)) == 1


@pytest.mark.parametrize(
    "script, twilio_code, words",
    [
        (lambda sim: sim.fail_next_create(400, 21211, "The 'To' number +15551234 is not a valid phone number."), 21211, "not a valid phone number"),
        (lambda sim: sim.fail_next_create(500, 20500, "Internal Server Error"), 20500, "Internal Server Error"),
        (lambda sim: sim.timeout_next_create(), None, "unreachable"),
    ],
)
def test_calls_create_failing_is_a_typed_failure_and_the_call_goes_on(setup, sim, services, livekit_double, tasks, script, twilio_code, words):
    a, _caller, call = setup
    script(sim)
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
    # The dial is the worker's: Agent A's request answers at once, and hears the outcome.
    assert r.status_code == 201 and r.json["transfer"]["status"] == "ringing"
    tasks()
    (payload,) = _failed(a)
    assert payload["outcome"] == "failed" and payload["reason_code"] == "dial_failed"
    assert payload["error_code"] == (str(twilio_code) if twilio_code else None)
    assert words in payload["reason"]
    assert call_status(a, call.id) == "active" and sim.outbound == []
    assert not [room for room in livekit_double.rooms if room.startswith("transfer_")]
    # Placing a call is never retried (it could ring Agent B twice): the task is simply over.
    assert [t.state for t in outbox.list_tasks(services.db) if t.kind == "twilio.dial_agent_b"] == ["done"]
    # The same context can be transferred again once Twilio is fine.
    assert a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE}).status_code == 201


def test_a_dial_that_timed_out_here_but_happened_at_twilio_is_cancelled(setup, sim, services, tasks):
    a, _caller, call = setup
    sim.timeout_next_create()
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
    assert r.status_code == 201, r.get_data(as_text=True)
    tid = r.json["transfer"]["id"]
    tasks()
    assert last(a, "transfer_failed")["reason_code"] == "dial_failed"
    orphan = "CA" + "7" * 32  # Twilio did place the call: its first callback arrives
    params = {"CallSid": orphan, "AccountSid": sim.account_sid, "From": "+15005550006", "To": B_PHONE, "CallStatus": "ringing", "Direction": "outbound-api"}
    assert sim.post(f"https://wt.example.test/twilio/transfer/{tid}/status", params).status_code == 200
    tasks()
    (cancel,) = sim.rest_calls("update")
    assert cancel.url.endswith(f"/Calls/{orphan}.json") and cancel.fields() == {"Status": "canceled"}
    answered = sim.post(f"https://wt.example.test/twilio/transfer/{tid}/answer", dict(params, CallStatus="in-progress"))
    assert "no longer waiting" in answered.get_data(as_text=True)


def test_a_worker_killed_while_dialling_never_dials_twice(setup, sim, services, tasks):
    """The dial task's claim lapsed (its worker died mid-request): whether Twilio placed the call
    is unknown, so the next worker ends the transfer instead of ringing Agent B a second time."""
    from sqlalchemy import update

    from app.models import Task, utcnow

    a, _caller, call = setup
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_phone": B_PHONE})
    with services.db.transaction() as s:  # a worker claimed it, then died
        s.execute(update(Task).where(Task.kind == "twilio.dial_agent_b").values(state="running", attempts=1, claimed_by="dead", lease_until=utcnow()))
    tasks()
    assert sim.rest_calls("create") == []
    payload = last(a, "transfer_failed")
    assert payload["reason_code"] == "dial_failed" and "could not be confirmed" in payload["reason"]
    assert r.json["transfer"]["id"] == payload["transfer_id"]


def test_duplicate_and_out_of_order_callbacks_change_nothing(setup, sim, services):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.ring().finish("busy")
    delivered = sim.deliver(reverse=True)  # busy arrives before initiated and ringing
    assert [d.params["CallStatus"] for d in delivered] == ["busy", "ringing", "initiated"]
    sim.redeliver(delivered)
    assert [p["outcome"] for p in _failed(a)] == ["busy"]
    row = transfer_row(services, body["transfer"]["id"])
    assert row.status == "busy" and row.leg_status == "busy"


def test_completed_after_an_answer_that_never_got_a_key_is_a_hang_up(setup, sim, services):
    a, _caller, call = setup
    _body, leg = dial_b(sim, a, call.id)
    leg.answer("human", hang_up_while_listening=True)
    assert "Press 1 to accept" in leg.spoken
    delivered = sim.deliver(reverse=True)  # completed arrives before answered
    assert [d.params["CallStatus"] for d in delivered] == ["completed", "in-progress", "initiated"]
    assert [(p["outcome"], p["reason_code"]) for p in _failed(a)] == [("declined", "hung_up")]
    assert call_status(a, call.id) == "active"


def test_completing_while_twilio_fails_retries_until_the_leg_is_moved(setup, sim, services, tasks):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.press("1").answer()
    sim.fail_next_update(503, 20503, "Service Unavailable")
    r = a.post("/api/complete-transfer", {"transfer_id": body["transfer"]["id"]})
    assert r.status_code == 200 and r.json["transfer"]["status"] == "completed"
    tasks()  # Twilio is down: the move waits and is retried
    assert leg.sip.room == body["transfer"]["transfer_room"]
    (move,) = [t for t in outbox.list_tasks(services.db) if t.kind == "twilio.update_leg"]
    assert move.state == "pending" and "20503" in move.last_error
    assert call_status_row(services, call.id) == "transferred"
    tasks(after_s=3)
    assert leg.sip.room == call.room_name and not leg.ended


def call_status_row(services, call_id: str) -> str:
    from tests.support import stored_call

    return stored_call(services, call_id).status


def test_a_phone_transfer_whose_callbacks_never_come_expires(setup, sim, services, tasks):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    tasks(after_s=31)
    assert "transfer_failed" not in types(a)  # Twilio's own ring timeout comes first
    tasks(after_s=95)
    assert [u.fields() for u in sim.rest_calls("update")] == [{"Status": "canceled"}]
    assert last(a, "transfer_failed")["outcome"] == "no_answer" and call_status(a, call.id) == "active"
    assert body["transfer"]["id"] == last(a, "transfer_failed")["transfer_id"]


def test_a_bridge_into_the_transfer_room_that_fails_is_a_typed_outcome_with_livekits_reason(setup, sim, services, livekit_double, tasks):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    sim.sip_legs.fail_next("failed", 404)  # LiveKit SIP: no trunk or dispatch rule matched
    leg.press("1").answer("human")
    (payload,) = _failed(a)
    assert (payload["outcome"], payload["reason_code"], payload["sip_response_code"]) == ("failed", "bridge_failed", 404)
    assert "dispatch rule" in payload["reason"] and "(SIP 404)" in payload["reason"]
    assert leg.says[-1] == "This transfer is no longer waiting for you. Goodbye." and leg.ended
    row = transfer_row(services, body["transfer"]["id"])
    assert row.status == "failed" and row.sip_response_code == 404
    assert call_status(a, call.id) == "active"
    tasks()
    assert body["transfer"]["transfer_room"] not in livekit_double.rooms
    # The timeline keeps it, for whoever looks at the call later.
    timeline = a.get(f"/api/calls/{call.id}").json["call"]["timeline"]
    assert any(e["type"] == "transfer_failed" and e["payload"]["sip_response_code"] == 404 for e in timeline)


def test_a_phone_agent_b_who_cannot_reach_the_customer_after_the_hand_over_sends_the_caller_to_the_next_agent(setup, sim, services, make_agent, tasks):
    a, _caller, call = setup
    body, leg = dial_b(sim, a, call.id)
    leg.press("1").answer("human")
    sim.deliver()
    make_agent("carol")
    assert a.post("/api/complete-transfer", {"transfer_id": body["transfer"]["id"]}).status_code == 200
    sim.sip_legs.fail_next("failed", 503)
    tasks()  # the worker moves the leg; its bridge into the customer's room fails
    assert "could not connect you to the caller" in leg.spoken
    stored = call_status_row(services, call.id)
    assert stored == "ringing"  # back in the queue and straight to Carol
    from tests.support import stored_call

    assert stored_call(services, call.id).agent_id == "carol" and stored_call(services, call.id).requeued_at is not None
