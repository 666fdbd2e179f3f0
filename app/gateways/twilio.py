"""The one door to Twilio: place Agent B's call, redirect or end a call, fetch and delete a
recording's media, check webhook signatures.

A thin facade over `twilio.rest.Client` (REST) and `RequestValidator` (webhooks). Every REST
failure leaves as a typed error that keeps Twilio's own error code and message: a 4xx is a
`TwilioError` (an invalid number is a 422, a call that has already ended a 409), a 5xx, a
timeout or an unreachable API is `TwilioUnavailable`. The requests are synchronous and bounded
by TWILIO_TIMEOUT_S; callers make them outside database transactions.

Recording media is the one request a web process makes (GET /api/calls/<id>/recording): the
library's resources return JSON only, so the media is fetched with the library's own requests
session (its pool, proxy and retry settings), the account's credentials as HTTP basic auth, and
the host the library would use (edge and region), then streamed on without being held in memory.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
# 20404: the requested resource was not found.
_NOT_FOUND = 20404
API_BASE = "https://api.twilio.com/2010-04-01"
# The Recording resource's media: "Appending .mp3 to the URI returns a binary MP3 audio file with
# mime-type audio/mpeg" (without an extension, or .wav, a WAV; Recording resource,
# https://www.twilio.com/docs/voice/api/recording). MP3 is a tenth of the size of 8 kHz 16-bit
# dual-channel WAV, and every browser's <audio> plays it.
RECORDING_MEDIA_EXTENSION = ".mp3"
RECORDING_MEDIA_TYPE = "audio/mpeg"
MEDIA_CHUNK_BYTES = 64 * 1024


@dataclass
class RecordingMedia:
    """A recording's audio, open at Twilio: read it with `chunks()`, then `close()`."""

    content_type: str
    length: int | None
    _response: Any

    def chunks(self) -> Iterator[bytes]:
        yield from self._response.iter_content(MEDIA_CHUNK_BYTES)

    def close(self) -> None:
        self._response.close()


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
        self._auth = (account_sid, auth_token)
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

    def _call(self, what: str, fn: Callable[[Any], Any], *, gone_ok: bool = False):
        try:
            return fn(self._client)
        except TwilioRestException as err:
            failure = _rest_error(what, err.status, err.code if isinstance(err.code, int) else None, err.msg)
            # 21220: the leg had already ended; `gone_ok` and 404: deleted already. What we wanted.
            if failure.code != "phone_leg_ended" and not (gone_ok and err.status == 404):
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

    # -- recordings ------------------------------------------------------------------------
    def _recording_url(self, recording_sid: str, extension: str) -> str:
        url = f"{API_BASE}/Accounts/{self.account_sid}/Recordings/{recording_sid}{extension}"
        hostname = getattr(self._client, "get_hostname", None)  # twilio-python ClientBase: edge and region
        return hostname(url) if hostname is not None else url

    def recording_media(self, recording_sid: str) -> RecordingMedia | None:
        """The recording's MP3, open for streaming; None if Twilio has no such recording (404).
        Connecting and each read wait at most TWILIO_TIMEOUT_S."""
        http = getattr(getattr(self._client, "http_client", None), "session", None) or requests.Session()
        try:
            response = http.get(self._recording_url(recording_sid, RECORDING_MEDIA_EXTENSION), auth=self._auth, stream=True,
                                timeout=self.timeout_s)
        except requests.exceptions.RequestException as err:
            metrics.external_error("twilio", "timeout" if isinstance(err, requests.exceptions.Timeout) else "unavailable")
            raise TwilioUnavailable(f"Twilio is unreachable (could not fetch the recording: {type(err).__name__}).") from err
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            response.close()
            metrics.external_error("twilio", metrics.http_error_code(response.status_code))
            raise TwilioUnavailable(f"Twilio failed to serve the recording (HTTP {response.status_code}).")
        length = response.headers.get("Content-Length")
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not content_type.startswith("audio/"):
            content_type = RECORDING_MEDIA_TYPE
        return RecordingMedia(content_type, int(length) if length and length.isdigit() else None, response)

    def delete_recording(self, recording_sid: str) -> bool:
        """Delete the recording at Twilio (DELETE Recordings/{sid}). False if it was already gone
        (404, error 20404): the outcome wanted either way."""
        try:
            return bool(self._call("delete the recording", lambda c: c.recordings(recording_sid).delete(), gone_ok=True))
        except TwilioError as err:
            if err.twilio_code == _NOT_FOUND or getattr(err.__cause__, "status", None) == 404:
                return False
            raise

    # -- webhooks --------------------------------------------------------------------------
    def signature_valid(self, url: str, params, signature: str) -> bool:
        """True if `signature` is Twilio's for `url` and the form `params` (a mapping) or, for a JSON
        body, the raw body text (the URL then carries `bodySHA256`)."""
        if not signature:
            return False
        if isinstance(params, str) and "bodySHA256=" not in url:
            return False  # a JSON body is only ever signed through its hash in the URL
        return bool(self._validator.validate(url, params, signature))
