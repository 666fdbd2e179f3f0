"""Which customers hear hold audio, decided from the database so that every worker agrees
(the audio itself is proven on the live rig: tests/live/test_hold_audio_live.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app import outbox
from app.models import Call, Transfer, utcnow
from app.worker.hold import HoldPlayer
from tests.support import start_call, start_transfer, stored_call

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)


def wanted(services) -> dict[str, str]:
    return {call_id: reason for call_id, (_room, reason) in HoldPlayer(services, outbox.worker_id()).wanted().items()}


def test_a_web_queue_and_a_missed_assignment_want_hold_audio_but_not_twilios_own_hold_loop(client, make_agent, services, tasks, sim):
    web = start_call(client, None, "Early Web Caller")["session_id"]  # nobody logged in yet
    phone = sim.call_in("+14155550123")  # queued too, but in Twilio's hold loop, not in the room
    with services.db.reading() as s:
        phone_call = s.scalar(select(Call.id).where(Call.twilio_call_sid == phone.sid))
    assert wanted(services) == {web: "waiting"}

    agents = {"alice": make_agent("alice"), "bob": make_agent("bob")}  # they take the two calls
    assert wanted(services) == {}  # ringing for an agent for the first time: ringback, not music
    owner = {call_id: stored_call(services, call_id).agent_id for call_id in (web, phone_call)}
    answered, missed = web, phone_call
    agents[owner[answered]].post("/api/token", {"session_id": answered})
    tasks(after_s=31)  # the other agent never joins: that caller waits in the room for the next one
    assert stored_call(services, missed).status == "queued"
    assert wanted(services) == {missed: "waiting"}


def test_the_consult_and_the_hand_over_until_agent_b_is_there(client, make_agent, services):
    a, b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    sid = call["session_id"]
    assert wanted(services) == {}
    t = start_transfer(a, call, "bob")
    assert wanted(services) == {sid: "consult"}
    b.post("/api/accept-transfer", {"transfer_id": t["id"]})
    assert wanted(services) == {sid: "consult"}
    a.post("/api/complete-transfer", {"transfer_id": t["id"]})
    assert wanted(services) == {sid: "handover"}  # until Bob is in the customer's room
    with services.db.transaction() as s:  # LiveKit reported Bob in the room (transfer_bridged)
        s.execute(update(Transfer).where(Transfer.id == t["id"]).values(bridged_at=utcnow()))
    assert wanted(services) == {}


def test_a_cancelled_consult_stops_the_hold_audio(client, make_agent, services):
    a, _b = make_agent("alice"), make_agent("bob")
    call = start_call(client, a)
    t = start_transfer(a, call, "bob")
    assert wanted(services) == {call["session_id"]: "consult"}
    a.post("/api/cancel-transfer", {"transfer_id": t["id"]})
    assert wanted(services) == {}
