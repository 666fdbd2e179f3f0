"""The simulator's side of Twilio's REST API, answered through `responses`: calls.create makes an
outbound `SimCall`, calls(sid).update redirects, cancels or hangs one up; failures are
scriptable. Mixed into `TwilioSim`; see `tests/doubles/twilio_sim.py`."""
from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs

import requests

from tests.doubles.twilio_sim_calls import SimCall, new_sid, synchronized

API = "https://api.twilio.com/2010-04-01"


@dataclass
class RestRequest:
    method: str
    url: str
    form: dict[str, list[str]]

    def fields(self) -> dict[str, str | list[str]]:
        """Single-valued fields as strings; repeated ones (StatusCallbackEvent) as lists."""
        return {k: v[0] if len(v) == 1 else v for k, v in self.form.items()}


class TwilioRest:
    """REST half of the simulator (needs `account_sid`, `calls`, `outbound`, `rest`, `sip_legs`,
    `lock`, `run`, `_end`, `_progress` from `TwilioSim`)."""

    _create_failures: deque
    _update_failures: deque

    # -- the REST API (through `responses`) -------------------------------------------------------
    def install(self, rsps) -> None:
        base = re.escape(f"{API}/Accounts/{self.account_sid}/Calls")
        rsps.add_callback("POST", re.compile(base + r"\.json$"), callback=lambda r: self._gate(r, self._create))
        rsps.add_callback("POST", re.compile(base + r"/(CA[0-9a-f]{32})\.json$"), callback=lambda r: self._gate(r, self._update))

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

    def rest_calls(self, kind: str) -> list[RestRequest]:
        return [r for r in self.rest if (r.url.endswith("/Calls.json")) == (kind == "create")]

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
        self.sip_legs.disconnect(leg)
        call.sip = call._after_dial = None
        if leg.action:
            self._request(call, leg.action, self.dial_params("completed"))

    @staticmethod
    def _error(status: int, code: int | None, message: str):
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        return status, {"Content-Type": "application/json"}, json.dumps(body)

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
