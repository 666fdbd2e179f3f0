"""The simulator's side of Twilio's REST API, answered through `responses`: calls.create makes an
outbound `SimCall`, calls(sid).update redirects, cancels or hangs one up; a recording's media is
served (`GET Recordings/RE….mp3|.wav`, basic auth required) and deleted (`DELETE
Recordings/RE….json`, 204, then 404); failures are scriptable. Mixed into `TwilioSim`; see
`tests/doubles/twilio_sim.py`."""
from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

import requests

from tests.doubles.twilio_sim_calls import SimCall, new_sid, synchronized

API = "https://api.twilio.com/2010-04-01"


# The Recording resource's media (https://www.twilio.com/docs/voice/api/recording): ".mp3" is MP3
# (audio/mpeg); no extension or ".wav" is WAV (audio/x-wav).
MEDIA_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/x-wav", "": "audio/x-wav"}


@dataclass
class SimRecording:
    sid: str
    call_sid: str
    duration_s: int
    channels: int
    started_at: datetime
    deleted: bool = False
    media: bytes = b""  # empty: a few stand-in bytes named after the recording

    def body(self, extension: str) -> bytes:
        if self.media:
            return self.media
        stand_in = b"ID3\x04\x00\x00\x00\x00\x00\x00" if extension == ".mp3" else b"RIFF\x00\x00\x00\x00WAVE"
        return stand_in + self.sid.encode() * 64


@dataclass
class RestRequest:
    method: str
    url: str
    form: dict[str, list[str]]

    def fields(self) -> dict[str, str | list[str]]:
        """Single-valued fields as strings; repeated ones (StatusCallbackEvent) as lists."""
        return {k: v[0] if len(v) == 1 else v for k, v in self.form.items()}


class TwilioRest:
    """REST half of the simulator (needs `account_sid`, `auth_token`, `calls`, `outbound`, `rest`,
    `recordings`, `sip_legs`, `lock`, `run`, `_end`, `_progress`, `leg_over` from `TwilioSim`)."""

    _create_failures: deque
    _update_failures: deque
    _media_failures: deque
    _delete_failures: deque

    # -- the REST API (through `responses`) -------------------------------------------------------
    def install(self, rsps) -> None:
        base = re.escape(f"{API}/Accounts/{self.account_sid}/Calls")
        rsps.add_callback("POST", re.compile(base + r"\.json$"), callback=lambda r: self._gate(r, self._create))
        rsps.add_callback("POST", re.compile(base + r"/(CA[0-9a-f]{32})\.json$"), callback=lambda r: self._gate(r, self._update))
        recordings = re.escape(f"{API}/Accounts/{self.account_sid}/Recordings/") + r"RE[0-9a-f]{32}"
        rsps.add_callback("GET", re.compile(recordings + r"(\.mp3|\.wav)?$"), callback=lambda r: self._gate(r, self._media))
        rsps.add_callback("DELETE", re.compile(recordings + r"\.json$"), callback=lambda r: self._gate(r, self._delete_recording))

    def hang(self) -> None:
        """From now on every REST request waits (Twilio's API not answering) until `release()`.
        The wait happens outside the simulator's lock: the test can go on driving calls."""
        self._hanging = threading.Event()

    def release(self) -> None:
        hanging, self._hanging = getattr(self, "_hanging", None), None
        if hanging is not None:
            hanging.set()

    def _gate(self, request, handler):
        hanging = getattr(self, "_hanging", None)
        if hanging is not None:
            self.hung.append(request.url)
            hanging.wait()
        return handler(request)

    def fail_next_create(self, status: int = 400, code: int | None = 21211, message: str = "The 'To' number is not a valid phone number.") -> None:
        self._create_failures.append((status, code, message))

    def timeout_next_create(self) -> None:
        self._create_failures.append(requests.exceptions.ReadTimeout("simulated Twilio timeout"))

    def fail_next_update(self, status: int = 503, code: int | None = 20503, message: str = "Service Unavailable") -> None:
        self._update_failures.append((status, code, message))

    def fail_next_media(self, status: int = 503, code: int | None = 20503, message: str = "Service Unavailable") -> None:
        self._media_failures.append((status, code, message))

    def timeout_next_media(self) -> None:
        self._media_failures.append(requests.exceptions.ReadTimeout("simulated Twilio timeout"))

    def fail_next_delete(self, status: int = 503, code: int | None = 20503, message: str = "Service Unavailable") -> None:
        self._delete_failures.append((status, code, message))

    def rest_calls(self, kind: str) -> list[RestRequest]:
        """Calls API requests: `create` (POST Calls.json) or `update` (POST Calls/CA….json)."""
        calls = [r for r in self.rest if "/Calls" in r.url]
        return [r for r in calls if r.url.endswith("/Calls.json") == (kind == "create")]

    def rest_recordings(self, method: str) -> list[RestRequest]:
        return [r for r in self.rest if "/Recordings/" in r.url and r.method == method]

    def _record(self, request) -> RestRequest:
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        item = RestRequest(request.method, request.url, parse_qs(body, keep_blank_values=True))
        self.rest.append(item)
        return item

    def _interrupt_dial(self, call: SimCall) -> None:
        """A redirect interrupts a `<Dial>` in progress. Twilio still requests the dial's action
        URL, and ignores the TwiML it returns (Twilio changelog 2021-05-24, "Changes to <Dial>
        behavior": "Twilio will make a request to the provided action callback when the parent
        call is transferred to a new TwiML via call modification")."""
        leg = call.sip
        if leg is None:
            return
        self.leg_over(leg)
        call.sip = call._after_dial = None
        if leg.action:
            self._request(call, leg.action, self.dial_params("completed"))

    @staticmethod
    def _error(status: int, code: int | None, message: str):
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    def _authorized(self, request) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == expected

    @synchronized
    def _media(self, request):
        """GET a recording's media, with the account's credentials (HTTP basic auth)."""
        self._record(request)
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if self._media_failures:
            failure = self._media_failures.popleft()
            if isinstance(failure, Exception):
                raise failure
            return self._error(*failure)
        name = request.url.rsplit("/", 1)[1]
        sid, extension = name[:34], name[34:]
        recording = self.recordings.get(sid)
        if recording is None or recording.deleted:
            return self._error(404, 20404, "The requested resource was not found")
        body = recording.body(extension)
        return 200, {"Content-Type": MEDIA_TYPES[extension], "Content-Length": str(len(body))}, body

    @synchronized
    def _delete_recording(self, request):
        """DELETE Recordings/RE….json: 204 with no body; 404 (20404) if there is none (any more)."""
        self._record(request)
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        if self._delete_failures:
            return self._error(*self._delete_failures.popleft())
        recording = self.recordings.get(request.url.rsplit("/", 1)[1][: -len(".json")])
        if recording is None or recording.deleted:
            return self._error(404, 20404, "The requested resource was not found")
        recording.deleted = True
        return 204, {}, ""

    @synchronized
    def _create(self, request):
        item = self._record(request)
        if self._create_failures:
            failure = self._create_failures.popleft()
            if isinstance(failure, Exception):
                raise failure
            return self._error(*failure)
        f = item.fields()
        events = f.get("StatusCallbackEvent", [])
        call = SimCall(
            self, new_sid("CA"), "outbound-api", f["From"], f["To"], url=f.get("Url"), status_callback=f.get("StatusCallback"),
            events=tuple(events if isinstance(events, list) else [events]), machine_detection=f.get("MachineDetection"),
        )
        self.calls[call.sid] = call
        self.outbound.append(call)
        self._progress(call, "initiated")
        body = {"sid": call.sid, "account_sid": self.account_sid, "status": "queued", "to": call.to, "from": call.from_, "direction": "outbound-api"}
        return 201, {"Content-Type": "application/json"}, json.dumps(body)

    @synchronized
    def _update(self, request):
        item = self._record(request)
        call = self.calls.get(request.url.rsplit("/", 1)[1][: -len(".json")])
        if call is None:
            return self._error(404, 20404, "The requested resource was not found")
        f = item.fields()
        if self._update_failures:
            return self._error(*self._update_failures.popleft())
        if call.ended:
            return self._error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if f.get("Status") == "canceled" and call.status in ("queued", "initiated", "ringing"):
            self._end(call, "canceled")
        elif f.get("Status") == "completed":
            self._end(call, "completed" if call.status == "in-progress" else "canceled")
        elif "Twiml" in f or "Url" in f:
            self._interrupt_dial(call)
            call.parked = None
            if "Twiml" in f:
                self.run(call, f["Twiml"], call.url or "")
            else:
                self._request_and_run(call, f["Url"], {})
        body = {"sid": call.sid, "account_sid": self.account_sid, "status": call.status}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)
