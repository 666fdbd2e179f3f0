"""Twilio's and LiveKit's webhooks answer at once whatever Twilio and LiveKit are doing: what has
to follow (rooms deleted, Agent B's leg ended, a room created) is written down as tasks, and the
worker does it when the services answer again.

Both doubles are made to hang: any request to them blocks until the test releases it. Each
webhook must come back with the right answer (the bridge TwiML, not an apology) while neither
double has received a single request; only the worker, started afterwards, waits on them.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import pytest
from livekit.protocol import models
from sqlalchemy import select

from app import outbox
from app.models import Call
from app.worker import Worker
from tests.livekit_webhooks import join, send
from tests.support import run_tasks
from tests.telephony import dial_b, phone_call_with_context

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)

LIVENESS_S = 30.0  # only a bound for a hung test; the webhooks answer in milliseconds


def answered(fn):
    """Run a webhook on a thread and insist it returns (a webhook stuck on a hung double never would)."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", fn()), daemon=True)
    thread.start()
    thread.join(LIVENESS_S)
    assert not thread.is_alive(), "the webhook is waiting on Twilio or LiveKit"
    return out["result"]


def test_every_webhook_answers_while_twilio_and_livekit_hang(sim, make_agent, services, livekit_double, client):
    a = make_agent("alice")
    caller, call = phone_call_with_context(sim, a, services)
    body, b_leg = dial_b(sim, a, call.id)
    b_leg.ring()
    b_leg.press("1").answer("human")
    sim.deliver()
    run_tasks(services)
    make_agent("bob")  # free for the next caller

    livekit_double.hang()
    sim.hang()
    worker = None
    try:
        # A new caller: bridged at once (the room is created by a task; LiveKit would also create
        # it when the SIP leg arrives).
        second = answered(lambda: sim.call_in("+14155550177"))
        assert second.kinds() == ["say", "dial"] and second.sip is not None
        # LiveKit reports the first caller in the room; then the caller hangs up mid-briefing:
        # Twilio's dial action and status callbacks, and LiveKit's participant_left.
        customer = join(livekit_double, call.room_name, "sip_+14155550123", kind=models.ParticipantInfo.Kind.SIP,
                        attributes={"wt_call": call.id, "wt_role": "customer", "sip.callStatus": "active"})
        assert answered(lambda: send(client, livekit_double, "participant_joined", room=call.room_name, participant=customer)) == "customer present"
        answered(caller.hang_up)
        delivered = answered(sim.deliver)
        assert delivered and all(d.status_code == 200 for d in delivered)
        hung_up = dict(customer.attributes)
        hung_up["sip.callStatus"] = "hangup"
        customer.attributes.clear()
        customer.attributes.update(hung_up)
        assert answered(lambda: send(client, livekit_double, "participant_left", room=call.room_name, participant=customer)) == "call already ended"
        # Agent B's bridge into the (now closing) transfer room ends; its status callback too.
        assert ET.fromstring(answered(lambda: sim.post(b_leg.sip.action, dict(sim.base_params(b_leg), **sim.dial_params("completed")))).get_data()).tag == "Response"

        with services.db.reading() as s:
            assert s.get(Call, call.id).status == "completed"
        assert livekit_double.hung == [] and sim.hung == []  # no webhook asked either of them anything
        pending = {t.kind for t in outbox.list_tasks(services.db, state="pending", limit=200)}
        assert {"livekit.create_room", "livekit.delete_room", "twilio.update_leg"} <= pending

        # The worker does it, and waits on the hung services, not the webhooks.
        worker = Worker(services, hold_audio=False, poll_s=0.02).start()
        _until(lambda: livekit_double.hung and sim.hung)
    finally:
        livekit_double.release()
        sim.release()
        if worker is not None:
            worker.stop()
    run_tasks(services, after_s=60)
    assert call.room_name not in livekit_double.rooms and body["transfer"]["transfer_room"] not in livekit_double.rooms
    with services.db.reading() as s:
        new_call = s.scalar(select(Call).where(Call.twilio_call_sid == second.sid))
    assert new_call.room_name in livekit_double.rooms
    assert b_leg.ended and "caller has hung up" in b_leg.spoken


def _until(predicate, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the worker never reached the hung services"
        time.sleep(0.02)  # the worker runs on its own threads
