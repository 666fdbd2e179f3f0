"""The hand-over as the customer hears it, on the live rig (real livekit-server, livekit-sip, a SIP
phone as the customer): round after round, Agent A transfers a phone caller to Agent B and
completes, and the caller's own recording is read by frequency.

Figures:
- accept → two-way audio: from Agent B's accept answering to both agents hearing each other
  (Agent B joins the transfer room at once, as the dashboard does);
- handover gap: silence in what the customer hears between the last sound before Agent B (hold
  audio, which plays from the consult until Agent B is in the room) and Agent B's first sound;
  negative values are overlap (hold still fading while B already speaks);
- complete → Agent B heard: from the complete-transfer answer to the customer hearing Agent B.
Agent B in the dashboard (a LiveKit participant) and on the phone (a second SIP phone, moved into
the customer's room by the worker through Twilio's call update, as the simulator plays it).

Usage: .venv/bin/python -m bench.handover_gap [--rounds 10]   (needs scripts/rig/install.sh)
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import responses

from app import create_app
from bench.common import percentile
from tests.aio import run_async
from tests.live.app_env import B_PHONE, HOLD_HZ, AppHost, app_config, new_trunk_password, provision_output, remove_our_sip_objects, start_env
from tests.live.audio import heard_from, heard_until
from tests.live.participant import RATE
from tests.live.rig import Rig
from tests.live.steps import A_HZ, B_HZ, SIP_TONES, phone_after

WINDOW_S = 0.02  # 20 ms resolution for the gap
TONE_LEVEL = 300.0


def _first_energy(participant, identity: str, freq: float, since: int, timeout: float = 15.0) -> float:
    """Monotonic time at which `participant` first received `freq` from `identity` after sample `since`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heard = participant.audio_from(identity, since)
        at = heard_from(heard, RATE, freq, threshold=TONE_LEVEL, window_s=WINDOW_S) if heard.size else None
        if at is not None:
            return time.monotonic() - (heard.size / RATE - at)
        time.sleep(0.01)  # audio arrives in real time
    raise TimeoutError(f"no {freq:g} Hz from {identity}")


def one_round(env, round_: int, phone_b: bool) -> dict[str, float]:
    a = env.agent(f"alice{round_}", "Alice")
    caller = env.sim.call_in(f"+1415555{round_:04d}")
    from sqlalchemy import select

    from app.models import Call

    with env.services.db.reading() as s:
        call = s.scalar(select(Call).where(Call.twilio_call_sid == caller.sid))
    customer = env.legs.current("customer")
    agent_a = env.join(A_HZ, a.post("/api/token", {"session_id": call.id}).json["token"])
    env.legs.wait_answered(customer)
    bob = env.agent(f"bob{round_}", "Bob", phone=B_PHONE if phone_b else None)
    if phone_b:
        bob.post("/api/logout")  # offline with a phone: the transfer rings his phone
    r = a.post("/api/initiate-transfer", {"session_id": call.id, "to_agent_id": bob.id})
    transfer = r.json["transfer"]
    env.leave(agent_a)
    agent_a = env.join(A_HZ, r.json["token"])
    if phone_b:
        b_call = env.wait_until(lambda: [o for o in env.sim.outbound if o.to == B_PHONE and not o.ended], 10, "B dialled")[-1]
        b_call.ring()
        accepted_at = time.monotonic()
        b_call.press("1").answer("human")
        env.sim.deliver()
        b_leg = env.legs.current("agent_b")
        b_ident = env.wait_until(lambda: next((p.identity for p in agent_a.room.remote_participants.values() if p.attributes.get("wt_role") == "agent_b"), None), 15, "B's leg in the room")
        a_hears_b = _first_energy(agent_a, b_ident, B_HZ, 0)
        mark = b_leg.recording.length() if b_leg.recording.ready() else 0
        env.wait_until(lambda: b_leg.recording.ready() and heard_from(b_leg.recording.samples()[mark:], b_leg.recording.rate, A_HZ, window_s=WINDOW_S) is not None, 15, "B hearing A")
        b_hears_a = time.monotonic()
    else:
        accepted = bob.post("/api/accept-transfer", {"transfer_id": transfer["id"]})
        accepted_at = time.monotonic()
        agent_b = env.join(B_HZ, accepted.json["token"])
        a_hears_b = _first_energy(agent_a, f"agent-{bob.id}", B_HZ, 0)
        b_hears_a = _first_energy(agent_b, f"agent-{a.id}", A_HZ, 0)
    two_way = max(a_hears_b, b_hears_a) - accepted_at

    mark = customer.recording.length()  # the customer's recording from the click on
    assert a.post("/api/complete-transfer", {"transfer_id": transfer["id"]}).status_code == 200
    if not phone_b:
        env.leave(agent_b)
        agent_b = env.join(B_HZ, bob.post("/api/token", {"session_id": call.id}).json["token"])
    samples, rate = phone_after(customer, mark, 6.0)
    b_first = heard_from(samples, rate, B_HZ, threshold=TONE_LEVEL, window_s=WINDOW_S)
    before_b = samples[: int(b_first * rate)] if b_first else samples
    last_other = max(filter(None, [heard_until(before_b, rate, HOLD_HZ, threshold=TONE_LEVEL, window_s=WINDOW_S),
                                   heard_until(before_b, rate, A_HZ, threshold=TONE_LEVEL, window_s=WINDOW_S)]), default=0.0)
    hold_after_b = heard_until(samples, rate, HOLD_HZ, threshold=TONE_LEVEL, window_s=WINDOW_S) or 0.0
    gap = (b_first - last_other) if b_first is not None else float("nan")
    if b_first is not None and hold_after_b > b_first:
        gap = -(hold_after_b - b_first)  # overlap: hold audio still playing after B's first sound
    caller.hang_up()
    env.sim.deliver()
    for p in list(env.participants):
        env.leave(p)
    return {"two_way": two_way, "gap": gap, "to_b": b_first if b_first is not None else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="wt-handover-"))
    host = AppHost()
    rig = Rig.start(workdir / "rig", webhook_urls=[host.webhook_url], api_key="wt-bench-key", api_secret="wt-bench-secret-" + "x" * 24)
    try:
        password = new_trunk_password()
        provisioning = create_app(app_config(rig, host, workdir, password))
        provision_output(provisioning)
        provisioning.extensions["wt"].close()
        results: dict[str, dict[str, list[float]]] = {}
        for mode in ("dashboard", "phone"):
            figures: dict[str, list[float]] = {"two_way": [], "gap": [], "to_b": []}
            run_dir = workdir / mode
            run_dir.mkdir()
            with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
                env = start_env(rig, host, run_dir, password, SIP_TONES, rsps)
                try:
                    for round_ in range(args.rounds):
                        for key, value in one_round(env, round_, mode == "phone").items():
                            figures[key].append(value)
                        print(f"  {mode} round {round_ + 1}: two-way {figures['two_way'][-1] * 1000:.0f} ms, "
                              f"gap {figures['gap'][-1] * 1000:.0f} ms", file=sys.stderr)
                finally:
                    env.close()
                    host.app = None
                    env.services.close()
            results[mode] = figures
        print(f"livekit-server + livekit-sip (live rig), {args.rounds} rounds each; customer = SIP phone (PCMU), gap resolution {WINDOW_S * 1000:.0f} ms")
        for mode, figures in results.items():
            gaps = [g * 1000 for g in figures["gap"]]
            two = [t * 1000 for t in figures["two_way"]]
            to_b = [t * 1000 for t in figures["to_b"]]
            print(f"Agent B in the {mode}:")
            print(f"  accept → two-way audio between agents   p50 {percentile(two, 50):7.0f} ms  p99 {percentile(two, 99):7.0f} ms")
            print(f"  handover gap heard by the customer        p50 {percentile(gaps, 50):7.0f} ms  p99 {percentile(gaps, 99):7.0f} ms  (negative = overlap)")
            print(f"  complete → customer hears Agent B         p50 {percentile(to_b, 50):7.0f} ms  p99 {percentile(to_b, 99):7.0f} ms")
    finally:
        run_async(lambda: remove_our_sip_objects(rig))
        rig.stop()
        host.stop()


if __name__ == "__main__":
    main()
