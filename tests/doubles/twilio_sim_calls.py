"""The simulator's calls: a `SimCall` per phone call (what was said, pressed and dialled) and
the `SipLegs` hook that `<Dial><Sip>` goes through. See `tests/doubles/twilio_sim.py`."""
from __future__ import annotations

import functools
import itertools
import json
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

if TYPE_CHECKING:
    from tests.doubles.twilio_sim import TwilioSim

FINAL = ("completed", "busy", "no-answer", "failed", "canceled")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def synchronized(method):
    """Run under the simulator's (re-entrant) lock. The live rig drives one simulator from
    several threads: the test, the app's webhook threads making REST calls, and far-end
    hang-ups reported by real SIP legs; each of those steps must see a consistent call."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        lock = self.lock if hasattr(self, "lock") else self.sim.lock
        with lock:
            return method(self, *args, **kwargs)

    return wrapper


@dataclass
class SipLeg:
    """A `<Dial><Sip>` the app asked for."""

    call: SimCall
    uri: str
    username: str | None
    password: str | None
    action: str | None
    answer_on_bridge: bool
    connected: bool = False
    # `<Dial record recordingStatusCallback recordingStatusCallbackEvent>`, when the app asked.
    record: str | None = None
    recording_callback: str | None = None
    recording_events: str = "completed"
    answered_at: float | None = None  # time.monotonic() when the leg was answered

    @property
    def base(self) -> str:
        return self.uri.partition("?")[0]

    @property
    def room(self) -> str:
        return self.base[len("sip:"):].partition("@")[0]

    @property
    def host(self) -> str:
        return self.base.partition("@")[2].partition(";")[0]

    @property
    def params(self) -> dict[str, str]:
        return dict(p.partition("=")[::2] for p in self.base.split(";")[1:])

    @property
    def headers(self) -> dict[str, str]:
        query = self.uri.partition("?")[2]
        return {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in query.split("&") if p)}


class SipLegs(Protocol):
    """Where `<Dial><Sip>` goes. `connect` returns how the dial went: "answered" (the leg is up
    until `disconnect` or the far end hangs up) or a DialCallStatus failure ("failed", "busy",
    "no-answer"). A hook whose far end hangs up later (LiveKit sends BYE when a room closes)
    reports it with `leg.call.end_dial("completed")`, which requests the `<Dial action>` as
    Twilio would."""

    def connect(self, leg: SipLeg) -> str: ...

    def disconnect(self, leg: SipLeg) -> None: ...


class RecordingSipLegs:
    """The default hook: every leg answers (unless `fail_next` was called) and is recorded."""

    def __init__(self):
        self.legs: list[SipLeg] = []
        self._failures: deque[str] = deque()

    def fail_next(self, dial_status: str = "failed", sip_code: int | None = None) -> None:
        self._failures.append(dial_status + (f":{sip_code}" if sip_code else ""))

    def connect(self, leg: SipLeg) -> str:
        self.legs.append(leg)
        return self._failures.popleft() if self._failures else "answered"

    def disconnect(self, leg: SipLeg) -> None:
        leg.connected = False


@dataclass
class Step:
    kind: str  # say | play | pause | gather | dial | redirect | hangup | transcription
    text: str = ""
    attrs: dict = field(default_factory=dict)


@dataclass
class SimCall:
    sim: TwilioSim
    sid: str
    direction: str  # inbound | outbound-api
    from_: str
    to: str
    status: str = "queued"
    url: str | None = None
    status_callback: str | None = None
    events: tuple[str, ...] = ()
    machine_detection: str | None = None
    steps: list[Step] = field(default_factory=list)
    digits: deque = field(default_factory=deque)
    sip: SipLeg | None = None
    dials: list[SipLeg] = field(default_factory=list)
    parked: str | None = None
    transcription: dict | None = None
    transcription_sid: str = field(default_factory=lambda: new_sid("GT"))
    _after_dial: tuple[list, str] | None = None
    _seq: itertools.count = field(default_factory=itertools.count)

    # -- what happened ---------------------------------------------------------------------
    @property
    def says(self) -> list[str]:
        return [s.text for s in self.steps if s.kind == "say"]

    @property
    def spoken(self) -> str:
        return " ".join(self.says)

    @property
    def ended(self) -> bool:
        return self.status in FINAL

    def kinds(self) -> list[str]:
        return [s.kind for s in self.steps]

    def press(self, *keys: str | None) -> SimCall:
        """Script the next Gathers: a digit string each, or None for silence."""
        self.digits.extend(keys)
        return self

    # -- the caller / Agent B acting -----------------------------------------------------------
    @synchronized
    def resume(self):
        """Follow a `<Redirect>` that came after a `<Pause>` (the hold loop)."""
        target, self.parked = self.parked, None
        assert target, "the call is not waiting on a redirect"
        return self.sim._request_and_run(self, target, {})

    @synchronized
    def hang_up(self) -> None:
        """This party hangs up. A bridged caller's `<Dial action>` is requested as Twilio does."""
        assert not self.ended, f"call {self.sid} already {self.status}"
        leg = self.sip
        self.sim._end(self, "completed")
        if leg is not None and leg.action:
            self.sim._request(self, leg.action, self.sim.dial_params("completed"))

    @synchronized
    def end_dial(self, dial_status: str = "completed", sip_code: int | None = None):
        """The far end of the current `<Dial>` hung up (e.g. LiveKit closed the room), or, with
        a failure status, refused it (LiveKit SIP's ringing timeout: "busy", 486)."""
        leg = self.sip
        assert leg is not None, "no dial in progress"
        self.sim.leg_over(leg)
        self.sip = None
        return self.sim._dial_finished(self, leg, dial_status, sip_code=sip_code)

    # -- outbound leg progress (Agent B's phone) -------------------------------------------------
    @synchronized
    def ring(self) -> SimCall:
        self.sim._progress(self, "ringing")
        return self

    @synchronized
    def answer(self, answered_by: str | None = "human", *, hang_up_while_listening: bool = False) -> SimCall:
        """Picked up: the in-progress callback is queued and the answer URL is fetched and run.
        `hang_up_while_listening`: the `<Say>`s are heard, then they hang up before any key."""
        self.sim._progress(self, "in-progress")
        extra = {"AnsweredBy": answered_by} if self.machine_detection and answered_by else {}
        if not hang_up_while_listening:
            self.sim._request_and_run(self, self.url, extra)
            return self
        document = ET.fromstring(self.sim._request(self, self.url, extra).get_data())
        self.steps.extend(Step("say", el.text or "", dict(el.attrib)) for el in document.iter("Say"))
        self.sim._end(self, "completed")
        return self

    @synchronized
    def finish(self, status: str, **extra) -> SimCall:
        """Ends unanswered or answered: busy, no-answer, failed (with ErrorCode...), completed."""
        self.sim._end(self, status, extra)
        return self

    # -- transcription events -------------------------------------------------------------------
    @synchronized
    def transcribe(self, text: str, *, track: str = "inbound_track", final: bool = True, sequence: int | None = None, event: str = "transcription-content"):
        assert self.transcription, "the app did not start a transcription on this call"
        params = {
            "TranscriptionSid": self.transcription_sid,
            "TranscriptionEvent": event,
            "LanguageCode": "en-US",
            "Timestamp": _now(),
        }
        if event == "transcription-content":
            params.update(
                Track=track,
                Final="true" if final else "false",
                TranscriptionData=json.dumps({"transcript": text, "confidence": 0.93}),
                SequenceId=str(next(self._seq) + 1 if sequence is None else sequence),
            )
        return self.sim.post(self.transcription["statusCallbackUrl"], dict(self.sim.base_params(self), **params))


def _now() -> str:
    return datetime.now(UTC).isoformat()
