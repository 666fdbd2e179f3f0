"""The worker SIGKILLed in the middle of calls and started again, on the live rig.

The worker runs as its own process (tests/live/worker_process.py), so it can be killed for real:
its hold audio stops with it, and what happens while it is dead is only written down (tasks).
After the restart the hold audio comes back within seconds (its lease lapses, another worker
takes the call), and every room deletion and phone-leg hang-up written meanwhile happens: no
room or leg is left behind.

Two calls: X, a phone customer with Agent A consulting dashboard Agent B (hold audio); Y, a web
customer whose agent consults a *phone* Agent B and cancels while the worker is dead (a leg to
hang up, a room to delete).
"""
from __future__ import annotations

import time

import pytest

from app.models import Call, Transfer
from tests.doubles.twilio_http import TwilioHttp
from tests.live.app_env import AUTH_TOKEN, B_PHONE, HOLD_HZ, app_config
from tests.live.audio import assert_hears, heard_from
from tests.live.listening import listen
from tests.live.steps import A_HZ, B_HZ, CUSTOMER_HZ, WEB_HZ, answer, consult_with_dashboard_b, phone_after, phone_caller
from tests.live.worker_process import WorkerProcess

pytestmark = [pytest.mark.live, pytest.mark.no_worker]

TONES = [CUSTOMER_HZ, WEB_HZ, A_HZ, B_HZ, HOLD_HZ]
BACK_WITHIN_S = 10.0  # the hold lease lapses after 4 s; joining and publishing take a moment


def others(*heard: float) -> list[float]:
    return [f for f in TONES if f not in heard]


def test_a_worker_killed_mid_consult_and_restarted_resumes_hold_audio_and_finishes_every_task(live_env, app_host, provisioned, tmp_path):
    env = live_env
    password, _ = provisioned
    twilio = TwilioHttp(env.sim, AUTH_TOKEN)
    config = app_config(env.rig, app_host, tmp_path, password)
    first = WorkerProcess(config, twilio.base, tmp_path, "worker-1").start()
    second = None
    try:
        # Call X: phone customer, Alice consulting dashboard Bob; the customer hears hold audio.
        a, caller, call_x, customer_x = phone_caller(env)
        agent_a = answer(env, a, call_x, customer_x)
        b, transfer_x, agent_a, agent_b = consult_with_dashboard_b(env, a, call_x.id, agent_a)
        assert_hears(listen(env, TONES, {}, {"x": customer_x})["x"], HOLD_HZ, others(HOLD_HZ), "customer X on hold")

        # Call Y: a web customer with Carol, consulting Dave on his phone (dialled by the worker).
        c = env.agent("carol", "Carol Chen")
        created = env.app.test_client().post("/api/create-call", json={"customer_name": "Wendy Web"})
        sid_y = created.json["session_id"]
        env.join(WEB_HZ, created.json["token"])  # the web customer, in their room
        agent_c = env.join(A_HZ, c.post("/api/token", {"session_id": sid_y}).json["token"])
        r = c.post("/api/initiate-transfer", {"session_id": sid_y, "to_phone": B_PHONE})
        transfer_y = r.json["transfer"]
        env.leave(agent_c)
        agent_c = env.join(A_HZ, r.json["token"])
        dave = env.wait_until(lambda: [o for o in env.sim.outbound if o.to == B_PHONE], 10, "the worker dialling Dave")[0]
        dave.ring()
        dave.press("1").answer("human")
        env.sim.deliver()
        dave_leg = env.legs.current("agent_b")
        env.legs.wait_answered(dave_leg)
        assert env.row(Transfer, transfer_y["id"]).status == "briefing"

        # The worker dies: its hold audio with it.
        first.kill()
        mark = customer_x.recording.length()
        # While it is dead, Carol cancels: Dave's leg must be hung up and room Y deleted.
        assert c.post("/api/cancel-transfer", {"transfer_id": transfer_y["id"]}).status_code == 200
        time.sleep(2.0)  # no worker: give the hang-up two seconds to (wrongly) happen anyway
        assert not dave_leg.ended.is_set() and not dave.ended
        assert env.rooms(transfer_y["transfer_room"]) == [transfer_y["transfer_room"]]
        silent, rate = phone_after(customer_x, mark + int(0.5 * customer_x.recording.rate), 1.0)
        assert heard_from(silent, rate, HOLD_HZ) is None, "hold audio without a worker?"

        # A new worker: the hold audio comes back, the pending hang-up and deletion happen.
        restarted_at = time.monotonic()
        second = WorkerProcess(config, twilio.base, tmp_path, "worker-2").start()
        back_mark = customer_x.recording.length()
        samples, rate = phone_after(customer_x, back_mark, BACK_WITHIN_S)
        back = heard_from(samples, rate, HOLD_HZ)
        print(f"[restart] hold audio back {back}s after the new worker started ({time.monotonic() - restarted_at:.1f}s checked)")
        assert back is not None and back <= BACK_WITHIN_S, "hold audio did not come back"
        env.legs.wait_ended(dave_leg, 15)
        env.wait_until(lambda: dave.ended, 10, "Dave's call over, Twilio's side")
        env.wait_until(lambda: not env.rooms(transfer_y["transfer_room"]), 10, "transfer room Y deleted")
        assert [u.fields() for u in env.sim.rest_calls("update")] == [{"Status": "completed"}]
        assert_hears(listen(env, TONES, {}, {"x": customer_x})["x"], HOLD_HZ, others(HOLD_HZ), "customer X on hold again")

        # Call X completes with the new worker: Bob reaches the customer, the hold audio goes.
        assert a.post("/api/complete-transfer", {"transfer_id": transfer_x["id"]}).status_code == 200
        env.leave(agent_b)
        agent_b = env.join(B_HZ, b.post("/api/token", {"session_id": call_x.id}).json["token"])
        env.wait_until(lambda: f"hold-{call_x.id}" not in env.identities(call_x.room_name), 10, "the hold participant gone")
        assert_hears(listen(env, TONES, {}, {"x": customer_x})["x"], B_HZ, others(B_HZ), "customer X with Bob")
        env.wait_until(lambda: not env.rooms(transfer_x["transfer_room"]), 10, "transfer room X deleted")

        # Both calls end: every room goes, every leg ends.
        caller.hang_up()
        env.sim.deliver()
        assert c.post("/api/end-call", {"session_id": sid_y}).status_code == 200
        env.legs.wait_ended(customer_x, 15)
        env.wait_until(lambda: not env.rooms(call_x.room_name, f"call_{sid_y}"), 15, "both call rooms deleted")
        assert env.row(Call, call_x.id).status == "completed" and env.row(Call, sid_y).status == "completed"
        assert all(leg.ended.is_set() for leg in env.legs.legs)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()
        twilio.stop()
