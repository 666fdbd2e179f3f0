"""A Twilio simulator for tests: Twilio's side of every webhook and REST request the app makes.

Webhooks: it posts to the app exactly as Twilio does — form-encoded, Twilio's parameter names
(CallSid, AccountSid, From, To, CallStatus, Direction, Digits, AnsweredBy, DialCallStatus, ...),
signed with `RequestValidator.compute_signature` over the absolute URL — and it executes the TwiML
the app answers: `<Say>` and `<Play>` are recorded, `<Gather>` is answered with the next scripted
digits (or silence), `<Redirect>` is followed (after a `<Pause>` or `<Play>` it waits for
`resume()`, like a caller on hold), `<Dial><Sip>` becomes a `SipLeg` with its URI, X- headers and
credentials (and, with `record`, a recording when an answered dial ends: its recordingStatusCallback
is queued with the other callbacks and its media served by the REST half), `<Hangup/>` or the end of the document ends the call, and `<Start><Transcription>` is
remembered so the test can send transcription events to its callback URL.

REST: `install(responses_mock)` answers `POST .../Calls.json` (recording the exact form fields and
creating an outbound `SimCall`) and `POST .../Calls/<sid>.json` (redirect with inline TwiML,
cancel, hang up). Failures are scriptable: `fail_next_create(400, 21211, ...)`, a 5xx, a timeout.

Time is the test's: status callbacks are queued in `pending` as calls progress and posted by
`deliver()` (optionally reversed, or again), so duplicate and out-of-order delivery are explicit.

SIP legs go through a `SipLegs` hook. The default only records them; the live rig replaces it
(`tests/live/sip_legs.py`) with one that places a real SIP INVITE (URI, X- headers, digest
credentials) to LiveKit SIP and reports how it ended, without changing anything else here.
Because the live rig drives the simulator from several threads at once, every entry point runs
under one re-entrant lock (`synchronized`).

Layout: this module (posting webhooks, running TwiML, status callbacks), `twilio_sim_calls`
(`SimCall`, `SipLeg`, the `SipLegs` hook) and `twilio_sim_rest` (the REST half, mixed in).
"""
from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

from tests.doubles.twilio_sim_calls import FINAL, RecordingSipLegs, SimCall, SipLeg, SipLegs, Step, _now, new_sid, synchronized
from tests.doubles.twilio_sim_rest import API, RestRequest, SimRecording, TwilioRest

__all__ = ["API", "FINAL", "RecordingSipLegs", "RestRequest", "SimCall", "SimRecording", "SipLeg", "SipLegs", "Step", "TwilioSim", "new_sid"]


@dataclass
class Delivered:
    url: str
    params: dict
    status_code: int


class TwilioSim(TwilioRest):
    def __init__(self, client, *, account_sid: str, auth_token: str, number: str, voice_url: str, status_url: str, sip_legs: SipLegs | None = None):
        self.client = client
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.auth_token = auth_token
        self.number = number
        self.voice_url = voice_url
        self.status_url = status_url
        self.sip_legs = sip_legs or RecordingSipLegs()
        self.lock = threading.RLock()  # see `synchronized`
        self.calls: dict[str, SimCall] = {}
        self.outbound: list[SimCall] = []
        self.rest: list[RestRequest] = []
        self.hung: list[str] = []  # REST requests that arrived while the API was hanging
        self.pending: list[tuple[str, dict]] = []
        self.delivered: list[Delivered] = []
        self._create_failures: deque = deque()
        self._update_failures: deque = deque()
        self.recordings: dict[str, SimRecording] = {}
        self._media_failures: deque = deque()
        self._delete_failures: deque = deque()

    # -- posting webhooks ------------------------------------------------------------------------
    def sign(self, url: str, params: dict) -> str:
        return self.validator.compute_signature(url, params)

    def post(self, url: str, params: dict, *, signature: str | None = None, headers: dict | None = None, via: str | None = None):
        """POST a form to the app as Twilio would. `via` posts to another base URL (a proxy's
        inside address) while the signature stays the one for `url`."""
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        all_headers = {"X-Twilio-Signature": self.sign(url, params) if signature is None else signature, **(headers or {})}
        base = via or f"{parts.scheme}://{parts.netloc}"
        return self.client.post(target, data=params, headers=all_headers, base_url=base)

    def post_json(self, url: str, body: dict, *, signature: str | None = None):
        """A JSON-bodied webhook: Twilio adds bodySHA256 to the URL and signs the URL alone."""
        raw = json.dumps(body)
        signed_url = url + ("&" if "?" in url else "?") + "bodySHA256=" + self.validator.compute_hash(raw)
        parts = urlsplit(signed_url)
        sig = self.sign(signed_url, {}) if signature is None else signature
        return self.client.post(
            parts.path + "?" + parts.query, data=raw, content_type="application/json",
            headers={"X-Twilio-Signature": sig}, base_url=f"{parts.scheme}://{parts.netloc}",
        )

    def base_params(self, call: SimCall) -> dict:
        return {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.from_,
            "To": call.to,
            "CallStatus": call.status,
            "Direction": call.direction,
            "ApiVersion": "2010-04-01",
        }

    def _request(self, call: SimCall, url: str, extra: dict):
        response = self.post(url, dict(self.base_params(call), **extra))
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True))
        assert response.mimetype == "text/xml", response.mimetype
        return response

    def _request_and_run(self, call: SimCall, url: str, extra: dict):
        response = self._request(call, url, extra)
        self.run(call, response.get_data(as_text=True), url)
        return response

    # -- inbound calls -----------------------------------------------------------------------------
    @synchronized
    def call_in(self, from_: str = "+14155550123", *, digits: tuple = ()) -> SimCall:
        """A caller dials the number: Twilio requests the voice URL and runs what it gets."""
        call = SimCall(self, new_sid("CA"), "inbound", from_, self.number, status="ringing")
        call.digits.extend(digits)
        self.calls[call.sid] = call
        self._request_and_run(call, self.voice_url, {"CallerName": ""})
        if call.status == "ringing":
            call.status = "in-progress"
        return call

    # -- executing TwiML -----------------------------------------------------------------------------
    def run(self, call: SimCall, document: str, url: str) -> None:
        root = ET.fromstring(document.encode("utf-8"))
        assert root.tag == "Response", root.tag
        if call.status == "ringing":
            call.status = "in-progress"
        self._run_verbs(call, list(root), url)

    def _run_verbs(self, call: SimCall, verbs: list, url: str) -> None:
        paused = False
        for index, el in enumerate(verbs):
            if call.ended:
                return
            if el.tag == "Say":
                call.steps.append(Step("say", el.text or "", dict(el.attrib)))
            elif el.tag == "Pause":
                call.steps.append(Step("pause", attrs=dict(el.attrib)))
                paused = True
            elif el.tag == "Play":
                call.steps.append(Step("play", (el.text or "").strip(), dict(el.attrib)))
                paused = True  # the caller listens for a while: the test decides when it ends
            elif el.tag == "Start":
                for child in el:
                    assert child.tag == "Transcription", child.tag
                    call.transcription = dict(child.attrib)
                    call.steps.append(Step("transcription", attrs=dict(child.attrib)))
            elif el.tag == "Gather":
                if self._gather(call, el, url):
                    return
            elif el.tag == "Dial":
                if self._dial(call, el, verbs[index + 1:], url):
                    return
            elif el.tag == "Redirect":
                target = (el.text or "").strip()
                call.steps.append(Step("redirect", target, dict(el.attrib)))
                if paused:
                    call.parked = target  # a caller on hold: the test decides when time passes
                else:
                    self._request_and_run(call, target, {})
                return
            elif el.tag == "Hangup":
                call.steps.append(Step("hangup"))
                self._end(call, "completed")
                return
            else:
                raise AssertionError(f"the simulator does not know <{el.tag}>")
        if not call.ended:
            self._end(call, "completed")  # Twilio hangs up when the document runs out

    def _gather(self, call: SimCall, el, url: str) -> bool:
        for child in el:
            assert child.tag == "Say", f"unexpected <{child.tag}> inside <Gather>"
            call.steps.append(Step("say", child.text or "", dict(child.attrib, in_gather="true")))
        digits = call.digits.popleft() if call.digits else None
        call.steps.append(Step("gather", digits or "", dict(el.attrib)))
        if not digits and el.get("actionOnEmptyResult") != "true":
            return False  # Twilio moves on to the next verb
        self._request_and_run(call, el.get("action") or url, {"Digits": digits or ""})
        return True

    def _dial(self, call: SimCall, el, rest: list, url: str) -> bool:
        sip = el.find("Sip")
        assert sip is not None and len(el) == 1, "only <Dial><Sip> is simulated"
        leg = SipLeg(call, (sip.text or "").strip(), sip.get("username"), sip.get("password"), el.get("action"), el.get("answerOnBridge") == "true",
                     record=el.get("record"), recording_callback=el.get("recordingStatusCallback"),
                     recording_events=el.get("recordingStatusCallbackEvent") or "completed")
        call.dials.append(leg)
        call.steps.append(Step("dial", leg.uri, dict(el.attrib)))
        outcome = self.sip_legs.connect(leg)
        if outcome == "answered":
            leg.connected, leg.answered_at = True, time.monotonic()
            call.sip, call._after_dial = leg, (rest, url)
            return True
        status, _, code = outcome.partition(":")  # "busy:486": DialCallStatus and the SIP response
        self._dial_finished(call, leg, status, rest=(rest, url), sip_code=int(code) if code else None)
        return True

    def _dial_finished(self, call: SimCall, leg: SipLeg, dial_status: str, rest: tuple | None = None, sip_code: int | None = None):
        rest = rest or call._after_dial or ([], "")
        call._after_dial = None
        if leg.action:
            return self._request_and_run(call, leg.action, self.dial_params(dial_status, sip_code))
        self._run_verbs(call, *rest)
        return None

    @staticmethod
    def dial_params(dial_status: str, sip_code: int | None = None) -> dict:
        """What Twilio posts to a `<Dial><Sip>`'s action URL (TwiML `<Sip>` docs: DialSipCallId,
        DialSipResponseCode next to the standard DialCallStatus/DialCallSid)."""
        params = {"DialCallStatus": dial_status, "DialCallSid": new_sid("CA"), "DialSipCallId": new_sid("")[:24] + "@sim"}
        if sip_code is not None:
            params["DialSipResponseCode"] = str(sip_code)
        return params

    # -- call progress and status callbacks -------------------------------------------------------
    def _progress(self, call: SimCall, status: str, extra: dict | None = None) -> None:
        call.status = status
        event = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}.get(status, "completed")
        target = call.status_callback if call.direction == "outbound-api" else self.status_url
        wanted = call.events if call.direction == "outbound-api" else ("completed",)
        if target and event in wanted:
            params = dict(self.base_params(call), CallbackSource="call-progress-events", Timestamp=_now(), SequenceNumber=str(next(call._seq)))
            self.pending.append((target, dict(params, **(extra or {}))))

    def _end(self, call: SimCall, status: str, extra: dict | None = None) -> None:
        if call.sip is not None:
            self.leg_over(call.sip)
            call.sip = None
        self._progress(call, status, extra)

    # -- recordings (<Dial record>) ---------------------------------------------------------------
    def leg_over(self, leg: SipLeg) -> None:
        """An answered `<Dial>` ends (either side hung up, or a redirect interrupted it): the SIP
        leg is disconnected and, if the dial was recorded, the recording is made and its status
        callback queued. record-from-answer-*: only an answered dial is recorded (TwiML `<Dial>`
        docs, `record`), so a dial that failed (busy, no-answer) makes none."""
        was_up = leg.connected
        self.sip_legs.disconnect(leg)
        if not was_up or not leg.record or leg.record == "do-not-record" or leg.answered_at is None:
            return
        seconds = max(0, round(time.monotonic() - leg.answered_at))
        started = datetime.now(UTC) - timedelta(seconds=seconds)
        recording = SimRecording(new_sid("RE"), leg.call.sid, seconds, 2 if leg.record.endswith("-dual") else 1, started)
        self.recordings[recording.sid] = recording
        if leg.recording_callback and "completed" in leg.recording_events.split():
            self.pending.append((leg.recording_callback, self.recording_params(recording)))

    def recording_params(self, recording: SimRecording, status: str = "completed") -> dict:
        """What Twilio posts to a recordingStatusCallback (TwiML `<Recording>` docs and the
        `<Dial>` docs' recordingStatusCallback parameters: AccountSid, CallSid, RecordingSid,
        RecordingUrl, RecordingStatus, RecordingDuration, RecordingChannels, RecordingStartTime,
        RecordingSource, ErrorCode). CallSid is the parent call's, i.e. the caller's."""
        return {
            "AccountSid": self.account_sid,
            "CallSid": recording.call_sid,
            "RecordingSid": recording.sid,
            "RecordingUrl": f"{API}/Accounts/{self.account_sid}/Recordings/{recording.sid}",
            "RecordingStatus": status,
            "RecordingDuration": str(recording.duration_s),
            "RecordingChannels": str(recording.channels),
            "RecordingStartTime": format_datetime(recording.started_at),
            "RecordingSource": "DialVerb",
            "ErrorCode": "0",
        }

    def recording_callbacks(self) -> list[Delivered]:
        return [d for d in self.delivered if "RecordingSid" in d.params]

    @synchronized
    def deliver(self, *, reverse: bool = False) -> list[Delivered]:
        """Post every queued status callback (in order, or reversed) and clear the queue."""
        batch, self.pending = list(self.pending), []
        for url, params in reversed(batch) if reverse else batch:
            response = self.post(url, params)
            assert response.status_code == 200, (url, response.get_data(as_text=True))
            self.delivered.append(Delivered(url, params, response.status_code))
        return self.delivered[-len(batch):] if batch else []

    @synchronized
    def redeliver(self, items: list[Delivered]) -> None:
        """Twilio retries: the same callbacks again."""
        for item in items:
            assert self.post(item.url, item.params).status_code == 200
