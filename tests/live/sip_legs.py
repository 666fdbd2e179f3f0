"""The Twilio simulator's `<Dial><Sip>` made real: each leg is a SIP call from a pjsua2 phone
(tests/live/sip_phone.py) to the rig's livekit-sip.

The phone dials the URI the app put in its TwiML, with the URI's X-WT-* headers on the INVITE
and the `<Sip username password>` digest credentials, plays a tone chosen by the leg's role
(X-WT-Role: the customer and Agent B's phone each have their own) and records what it hears.

livekit-sip (v1.8.0, pkg/sip/inbound.go `waitSubscribe`) keeps an inbound call ringing (180)
until it has subscribed to a track in the room, i.e. until someone there publishes audio: a
caller is answered when their agent joins. So `connect` returns "answered" (the `<Dial>` is
up, in the simulator's terms) once LiveKit accepted the INVITE and is ringing or has answered,
and the test waits for the real answer with `wait_answered`; a refused INVITE is a
DialCallStatus ("failed", "busy", "no-answer").

When LiveKit ends a leg (BYE: its room was deleted), a watcher thread tells the simulator with
`call.end_dial("completed")`, exactly as Twilio would go on with the TwiML after `<Dial>`.
A leg the simulator or the test hangs up itself is not reported back.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.doubles.twilio_sim_calls import SipLeg
from tests.live.audio import GrowingWav, write_tone_wav
from tests.live.sip_phone import PhoneError, SipPhone

ANSWER_TIMEOUT_S = 20.0
ROLE_HEADER = "X-WT-Role"
PROGRESS = ("EARLY", "CONFIRMED", "DISCONNECTED")


def dial_status(code: int, answered: bool) -> str:
    """Twilio's DialCallStatus for a SIP leg that ended with this final response code."""
    if answered:
        return "completed"
    if code in (486, 600):
        return "busy"
    if code in (408, 480, 487):
        return "no-answer"
    return "failed"


@dataclass
class LiveLeg:
    leg: SipLeg
    phone: SipPhone
    role: str
    recording: GrowingWav
    hanging_up: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def room(self) -> str:
        return self.leg.room


class LiveSipLegs:
    def __init__(self, workdir: Path, tones: dict[str, float], lock):
        self.workdir = workdir
        self.tones = tones
        self.lock = lock  # the simulator's: reporting a far-end hang-up is a simulator step
        self.legs: list[LiveLeg] = []
        self._wavs = {role: write_tone_wav(workdir / f"tone-{role}.wav", hz) for role, hz in tones.items()}

    # -- SipLegs ---------------------------------------------------------------------------------
    def connect(self, leg: SipLeg) -> str:
        role = leg.headers.get(ROLE_HEADER, "")
        if role not in self.tones:
            raise AssertionError(f"<Dial><Sip> with an unexpected {ROLE_HEADER}: {leg.uri}")
        n = len(self.legs)
        recording = self.workdir / f"leg{n}-{role}-heard.wav"
        phone = SipPhone.dial(
            leg.uri, username=leg.username or "", password=leg.password or "", play_wav=self._wavs[role],
            record_wav=recording, log_path=self.workdir / f"leg{n}-{role}.log", from_user=leg.call.from_.lstrip("+"))
        try:
            state = phone.wait_event(lambda e: e["event"] == "call_state" and e["state"] in PROGRESS, ANSWER_TIMEOUT_S, "ringing or an answer")
        except PhoneError:
            phone.close()
            return "failed"
        if state["state"] == "DISCONNECTED":
            phone.close()
            return dial_status(state["code"], answered=False)
        live = LiveLeg(leg, phone, role, GrowingWav(recording))
        self.legs.append(live)
        threading.Thread(target=self._watch, args=(live,), name=f"sip-leg-{n}", daemon=True).start()
        return "answered"

    def disconnect(self, leg: SipLeg) -> None:
        live = self.find(leg)
        if live is not None:
            self.hang_up(live)

    # -- the test's handles ----------------------------------------------------------------------
    def find(self, leg: SipLeg) -> LiveLeg | None:
        return next((live for live in self.legs if live.leg is leg), None)

    def current(self, role: str) -> LiveLeg:
        """The newest leg of this role."""
        found = [live for live in self.legs if live.role == role]
        assert found, f"no {role} leg was dialled"
        return found[-1]

    def hang_up(self, live: LiveLeg) -> None:
        """Our side hangs up (BYE) and the recording is closed. The simulator is not told: the
        caller hanging up at the SIP level before Twilio's callbacks arrive."""
        live.hanging_up = True
        if not live.ended.is_set():
            live.phone.hangup()
            live.ended.wait(10)
        live.phone.close()

    def wait_answered(self, live: LiveLeg, timeout: float = ANSWER_TIMEOUT_S) -> None:
        """LiveKit answered (200 OK) and audio flows both ways on the leg."""
        live.phone.wait_state("CONFIRMED", timeout)
        live.phone.wait_media(timeout)

    def wait_ended(self, live: LiveLeg, timeout: float) -> None:
        if not live.ended.wait(timeout):
            raise AssertionError(f"{live.role} leg into {live.room} still up after {timeout:.0f}s")

    def close(self) -> None:
        for live in self.legs:
            live.hanging_up = True
            live.phone.close()

    def _watch(self, live: LiveLeg) -> None:
        try:
            ended = live.phone.wait_ended(timeout=3600)
        except PhoneError:
            return  # the phone process went away (closed at teardown)
        finally:
            live.ended.set()
        with self.lock:
            if not live.hanging_up and live.leg.call.sip is live.leg:  # LiveKit ended it
                answered = ended["connected_s"] > 0
                # An INVITE LiveKit SIP rejected (e.g. 486 at its ringing timeout) reaches the
                # <Dial action> as Twilio reports it: a DialCallStatus and the DialSipResponseCode.
                live.leg.call.end_dial(dial_status(ended["code"], answered=answered), sip_code=None if answered else ended["code"])
