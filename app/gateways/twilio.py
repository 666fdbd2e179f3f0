"""The one door to Twilio: place Agent B's call, redirect or end a call, check webhook signatures.

A thin facade over `twilio.rest.Client` (REST) and `RequestValidator` (webhooks). Every REST
failure leaves as a typed error that keeps Twilio's own error code and message: a 4xx is a
`TwilioError` (an invalid number is a 422, a call that has already ended a 409), a 5xx, a
timeout or an unreachable API is `TwilioUnavailable`. The requests are synchronous and bounded
by TWILIO_TIMEOUT_S; callers make them outside database transactions.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from app import metrics
from app.errors import TwilioError, TwilioUnavailable

log = logging.getLogger(__name__)

# Every progress event, so the transfer can show "ringing" and react to each outcome.
STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
# "Enable" reports AnsweredBy as soon as Twilio knows (we hang up on machines rather than leave a
# message, so waiting for the end of a greeting would only delay a human).
MACHINE_DETECTION = "Enable"
# Bounds the silence a human hears while AMD decides; an undecided call arrives as "unknown".
MACHINE_DETECTION_TIMEOUT_S = 15
END_STATUSES = ("canceled", "completed")

# Twilio error codes that mean "this number cannot be called": 21211 invalid 'To' number,
# 21214 'To' number cannot be reached, 21217 number does not appear to be valid.
_INVALID_NUMBER_CODES = frozenset({21211, 21214, 21217})
# 21220: the call is not in progress (it ended before our update reached it).
_CALL_NOT_IN_PROGRESS = 21220


def _rest_error(what: str, status: int, twilio_code: int | None, message: str) -> TwilioError:
    code = f" (error {twilio_code})" if twilio_code else ""
    text = f"Twilio refused to {what}: {message}{code}"
    if status >= 500 or status == 429:
        return TwilioUnavailable(f"Twilio failed to {what} (HTTP {status}): {message}{code}", twilio_code=twilio_code)
    if twilio_code in _INVALID_NUMBER_CODES:
        return TwilioError(text, twilio_code=twilio_code, code="invalid_phone_number", status=422)
    if twilio_code == _CALL_NOT_IN_PROGRESS:
        return TwilioError(text, twilio_code=twilio_code, code="phone_leg_ended", status=409)
    return TwilioError(text, twilio_code=twilio_code)


class TwilioGateway:
    def __init__(self, *, account_sid: str, auth_token: str, from_number: str, timeout_s: float = 10.0, client: Any = None,
                 edge: str = "", region: str = ""):
        self.account_sid = account_sid
        self.from_number = from_number
        self.timeout_s = timeout_s
        # Edge and region make the library call api.<edge>.<region>.twilio.com (twilio-python
        # ClientBase.get_hostname). They are passed explicitly, with an empty environment: the
        # library would otherwise read TWILIO_EDGE / TWILIO_REGION from os.environ itself, and
        # configuration is read in app.config only.
        self._client = client or Client(
            account_sid,
            auth_token,
            http_client=TwilioHttpClient(timeout=timeout_s),
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
            edge=edge or None,
            region=region or None,
        )
        self._validator = RequestValidator(auth_token)

    @classmethod
    def from_config(cls, settings, client: Any = None) -> TwilioGateway:
        return cls(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            from_number=settings.TWILIO_PHONE_NUMBER,
            timeout_s=settings.TWILIO_TIMEOUT_S,
            client=client,
            edge=settings.TWILIO_EDGE,
            region=settings.TWILIO_REGION,
        )

    def _call(self, what: str, fn: Callable[[Any], Any]):
        try:
            return fn(self._client)
        except TwilioRestException as err:
            failure = _rest_error(what, err.status, err.code if isinstance(err.code, int) else None, err.msg)
            if failure.code != "phone_leg_ended":  # 21220: the leg had already ended, which is what we wanted
                metrics.external_error("twilio", metrics.http_error_code(err.status))
            raise failure from err
        except TwilioServiceException as err:
            metrics.external_error("twilio", metrics.http_error_code(err.status))
            raise _rest_error(what, err.status, err.code, err.detail or err.title) from err
        except requests.exceptions.RequestException as err:
            metrics.external_error("twilio", "timeout" if isinstance(err, requests.exceptions.Timeout) else "unavailable")
            raise TwilioUnavailable(
                f"Twilio is unreachable (could not {what}: {type(err).__name__}). Nothing was dialled; try again."
            ) from err

    # -- calls -----------------------------------------------------------------------------
    def place_call(self, to: str, *, answer_url: str, status_callback_url: str, ring_timeout_s: int) -> str:
        """Dial `to` from TWILIO_PHONE_NUMBER; Twilio fetches `answer_url` when it is answered.
        Returns the new call's SID."""
        call = self._call(
            "place the call",
            lambda c: c.calls.create(
                to=to,
                from_=self.from_number,
                url=answer_url,
                method="POST",
                status_callback=status_callback_url,
                status_callback_method="POST",
                status_callback_event=list(STATUS_CALLBACK_EVENTS),
                timeout=ring_timeout_s,
                machine_detection=MACHINE_DETECTION,
                machine_detection_timeout=MACHINE_DETECTION_TIMEOUT_S,
            ),
        )
        return call.sid

    def redirect(self, call_sid: str, twiml: str) -> None:
        """Replace what a live call is doing with inline TwiML (at most 4000 characters)."""
        self._call("redirect the call", lambda c: c.calls(call_sid).update(twiml=twiml))

    def redirect_to(self, call_sid: str, url: str) -> None:
        """Make a live call fetch new TwiML from `url` now (POST), interrupting what it is doing."""
        self._call("redirect the call", lambda c: c.calls(call_sid).update(url=url, method="POST"))

    def end(self, call_sid: str, status: str) -> None:
        """`canceled` stops a call that is still queued or ringing; `completed` hangs up one in progress."""
        if status not in END_STATUSES:
            raise ValueError(f"status must be one of {END_STATUSES}")
        self._call("end the call", lambda c: c.calls(call_sid).update(status=status))

    # -- webhooks --------------------------------------------------------------------------
    def signature_valid(self, url: str, params, signature: str) -> bool:
        """True if `signature` is Twilio's for `url` and the form `params` (a mapping) or, for a JSON
        body, the raw body text (the URL then carries `bodySHA256`)."""
        if not signature:
            return False
        if isinstance(params, str) and "bodySHA256=" not in url:
            return False  # a JSON body is only ever signed through its hash in the URL
        return bool(self._validator.validate(url, params, signature))
