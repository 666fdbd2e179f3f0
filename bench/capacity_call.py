"""One warm transfer of bench/capacity.py, set up for real and then listened to.

    caller: a pjsua2 phone (440 Hz) ──Twilio sim <Dial><Sip>──► livekit-sip ──► call_<id>
    Agent A (SDK participant, 1000 Hz) answers; transfers to dashboard Agent B (1650 Hz), who
    accepts and joins the transfer room (the briefing; the caller hears hold audio); A completes,
    B joins the caller's room, A leaves and signs out.

Agents are dashboards over HTTP (a cookie jar and the CSRF token); tokens come from the app's
API only. Afterwards the call stays up: the caller and Agent B hear each other until the run ends.

Routing: a new caller goes to any available agent, so the moments an agent is available are kept
apart: Agent A signs in and the caller dials under `routing` (A is then the only agent free), and
Agent B signs in and is offered the transfer under it too (B is then busy), so no caller is
ever routed to someone else's Agent B. Agent A signs out when done.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import requests
from livekit import rtc

from bench.capacity_stack import AGENT_PASSWORD, CapacityStack, agent_id
from tests.doubles.twilio_sim import SimCall
from tests.harness.waiting import until
from tests.live.app_env import HOLD_HZ
from tests.live.audio import analyse, tone_levels
from tests.live.participant import RATE, ToneParticipant
from tests.live.sip_legs import LiveLeg
from tests.live.steps import A_HZ, B_HZ, CUSTOMER_HZ

TONES = [CUSTOMER_HZ, A_HZ, B_HZ, HOLD_HZ]
STEP_TIMEOUT_S = 30.0
HEARD_LEVEL = 300.0  # band RMS (int16) above which a tone counts as heard in a 50 ms window (~ -40 dBFS)
DROPOUT_WINDOW_S = 0.05


class Agent:
    """One agent's dashboard: its own session cookie and CSRF token."""

    def __init__(self, base: str, agent: str):
        self.base, self.id = base, agent
        self.http = requests.Session()

    def _check(self, r: requests.Response, what: str) -> dict:
        if not 200 <= r.status_code < 300:
            raise RuntimeError(f"{self.id}: {what} -> {r.status_code} {r.text[:300]}")
        return r.json()

    def login(self) -> None:
        body = self._check(self.http.post(self.base + "/api/login", json={"agent_id": self.id, "password": AGENT_PASSWORD}, timeout=30), "login")
        self.http.headers["X-CSRF-Token"] = body["csrf_token"]

    def post(self, path: str, body: dict | None = None) -> dict:
        return self._check(self.http.post(self.base + path, json=body or {}, timeout=30), f"POST {path}")

    def get(self, path: str) -> dict:
        return self._check(self.http.get(self.base + path, timeout=30), f"GET {path}")


@dataclass
class WarmTransfer:
    index: int
    phases: dict[str, float] = field(default_factory=dict)  # seconds: answered, briefing, bridged
    caller: SimCall | None = None
    leg: LiveLeg | None = None
    agent_b: ToneParticipant | None = None
    caller_identity: str | None = None  # the caller's SIP participant, as Agent B sees it
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.error is None and self.caller_identity is not None


def hears(stack: CapacityStack, participant: ToneParticipant, predicate, what: str) -> str:
    """The identity of the first remote participant matching `predicate`, once audio from it flows."""
    found = stack.loop.run(participant.wait_participant(predicate, STEP_TIMEOUT_S, what), STEP_TIMEOUT_S + 5)
    stack.loop.run(participant.record(found.identity, 0.2, STEP_TIMEOUT_S), STEP_TIMEOUT_S + 5)
    return found.identity


def is_sip_customer(p: rtc.RemoteParticipant) -> bool:
    return p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP and p.attributes.get("wt_role") == "customer"


def set_up(stack: CapacityStack, index: int, routing: threading.Lock) -> WarmTransfer:
    """Dial in, answer, consult, complete; returns with Agent B and the caller in one room (or
    with `error` set and whatever was started ended again)."""
    unit = WarmTransfer(index)
    a, b = Agent(stack.url, agent_id("a", index)), Agent(stack.url, agent_id("b", index))
    agent_a = None
    started = time.monotonic()
    try:
        with routing:
            a.login()
            unit.caller = stack.sim.call_in(f"+1555{index:07d}")
            call_id = a.get("/api/me")["agent"]["active_call_id"]
        if call_id is None:
            raise RuntimeError(f"the caller was not routed to {a.id}: {unit.caller.steps[-3:]}")
        unit.leg = stack.legs.find(unit.caller.sip) if unit.caller.sip is not None else None
        if unit.leg is None:
            raise RuntimeError(f"no SIP leg for the caller (steps {[s.kind for s in unit.caller.steps]})")
        agent_a = stack.join(A_HZ, a.post("/api/token", {"session_id": call_id})["token"])
        stack.legs.wait_answered(unit.leg, STEP_TIMEOUT_S)  # livekit-sip answers once A publishes
        # A dashboard learns this from its event stream; asked here, so not too often: each
        # request is app CPU this benchmark counts per transfer.
        until(lambda: a.get(f"/api/calls/{call_id}")["call"]["status"] == "active", "the call active", STEP_TIMEOUT_S, every=0.25)
        unit.phases["answered"] = time.monotonic() - started

        with routing:
            b.login()
            initiated = a.post("/api/initiate-transfer", {"session_id": call_id, "to_agent_id": b.id})
        transfer_id = initiated["transfer"]["id"]
        stack.leave(agent_a)
        agent_a = stack.join(A_HZ, initiated["token"])
        unit.agent_b = stack.join(B_HZ, b.post("/api/accept-transfer", {"transfer_id": transfer_id})["token"])
        hears(stack, agent_a, lambda p: p.identity == f"agent-{b.id}", "Agent B in the briefing")
        unit.phases["briefing"] = time.monotonic() - started

        a.post("/api/complete-transfer", {"transfer_id": transfer_id})
        token = b.post("/api/token", {"session_id": call_id})["token"]
        stack.leave(unit.agent_b)
        unit.agent_b = stack.join(B_HZ, token)
        stack.leave(agent_a)
        agent_a = None
        a.post("/api/agent-exit-room", {"session_id": call_id})
        a.post("/api/logout")
        unit.caller_identity = hears(stack, unit.agent_b, is_sip_customer, "the caller, for Agent B")
        unit.phases["bridged"] = time.monotonic() - started
    except Exception as err:  # recorded: a call that could not be set up is a finding of the run
        unit.error = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        for participant in (agent_a, unit.agent_b):
            if participant is not None:
                try:
                    stack.leave(participant)
                except Exception:  # noqa: S110 (already failing; the rig is torn down at the end)
                    pass
        unit.agent_b = None
        if unit.leg is not None:
            try:
                stack.legs.hang_up(unit.leg)
            except Exception:  # noqa: S110
                pass
    return unit


# -- listening ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LegQuality:
    who: str  # "caller" (hears Agent B) or "agent" (Agent B hears the caller)
    expected_s: float
    received_s: float
    share: float  # of the received energy, in the expected tone's band
    snr_db: float  # that share against the rest, in dB
    dropouts: float  # share of 50 ms windows without the expected tone (missing audio counts)
    wrong: float  # the largest share of any other party's tone
    rms: float

    def problems(self, min_snr_db: float, max_dropouts: float) -> list[str]:
        """What is wrong with this leg, by kind (empty: it passes)."""
        found = []
        if self.rms < 200:  # about -44 dBFS; the tones are sent at -10 dBFS
            found.append("silent")
        if self.snr_db < min_snr_db:
            found.append(f"tone/rest under {min_snr_db:g} dB")
        if self.dropouts > max_dropouts:
            found.append(f"dropouts over {max_dropouts:.0%}")
        if self.wrong > 0.05:
            found.append("another party's tone heard")
        return found


def judge(who: str, samples: np.ndarray, rate: int, expected: float, seconds: float) -> LegQuality:
    report = analyse(samples, rate, TONES)
    share = report.fraction(expected)
    snr = 10 * np.log10(share / (1 - share)) if 0 < share < 1 else (60.0 if share >= 1 else -60.0)
    windows = int(seconds / DROPOUT_WINDOW_S)
    heard = int((tone_levels(samples, rate, expected, DROPOUT_WINDOW_S) > HEARD_LEVEL).sum()) if samples.size else 0
    wrong = max(report.fraction(f) for f in TONES if f != expected)
    return LegQuality(who, seconds, samples.size / rate, share, float(snr), max(0.0, 1 - heard / windows), wrong, report.rms)


class Listening:
    """Both directions of every call over one shared window: marks taken now, read at `collect`."""

    def __init__(self, stack: CapacityStack, units: list[WarmTransfer]):
        self.stack = stack
        self.units = [u for u in units if u.up]
        self.rtp_before = {u.index: u.leg.phone.stats() for u in self.units}
        self.marks = {u.index: (u.leg.recording.length(), u.agent_b.samples_from(u.caller_identity)) for u in self.units}
        self.underruns_before = sum(u.agent_b.underruns for u in self.units)
        self.rtp: dict[str, int] = {}

    def phones_received(self) -> dict[str, int]:
        """What the callers' phones received over the window, summed: RTP packets, packets lost
        on the way, frames their jitter buffers concealed or discarded (see SipPhone.stats)."""
        totals = {"rx_pkt": 0, "rx_loss": 0, "jb_lost": 0, "jb_discard": 0}
        for u in self.units:
            before, after = self.rtp_before[u.index], u.leg.phone.stats()
            if before.get("active") and after.get("active"):
                for key in totals:
                    totals[key] += after[key] - before[key]
        return totals

    def underruns(self) -> int:
        """Gaps in what the agents sent since the marks, because this process was late (see
        ToneParticipant.queue_ms): audio lost on our side, not the system's."""
        return sum(u.agent_b.underruns for u in self.units) - self.underruns_before

    def collect(self, seconds: float) -> list[LegQuality]:
        legs = []
        for u in self.units:
            phone_mark, agent_mark = self.marks[u.index]
            rate = u.leg.recording.rate
            end = phone_mark + int(seconds * rate)
            try:
                until(lambda u=u, end=end: u.leg.recording.length() >= end, "the phone's recording", 5.0)
            except AssertionError:
                pass  # judged on what there is: missing audio counts as dropouts
            legs.append(judge("caller", u.leg.recording.window(phone_mark, end), rate, B_HZ, seconds))
            need = agent_mark + int(seconds * RATE)
            try:
                self.stack.loop.run(u.agent_b.wait_for(lambda u=u, need=need: u.agent_b.samples_from(u.caller_identity) >= need, 5.0,
                                                       "the window's audio"), 10)
            except AssertionError:
                pass  # as above
            heard = u.agent_b.audio_from(u.caller_identity, agent_mark)[: int(seconds * RATE)]
            legs.append(judge("agent", heard, RATE, CUSTOMER_HZ, seconds))
        return legs
