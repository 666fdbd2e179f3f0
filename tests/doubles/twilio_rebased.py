"""The real twilio library's HTTP client, sending to a local base URL instead of api.twilio.com.

Paths, form fields, auth, timeouts and error parsing stay the library's own; only the host
changes (to the Twilio simulator's HTTP front, or a fault proxy in front of it). Used by the
worker processes the live rig and the fault suite start.
"""
from __future__ import annotations

from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient

TWILIO_API = "https://api.twilio.com"


class _Rebased(HTTPAdapter):
    """For requests made on the client's session directly (the gateway streams recording media
    that way): the same change of host."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def send(self, request, *args, **kwargs):
        request.url = self.base + request.url[len(TWILIO_API):]
        return super().send(request, *args, **kwargs)


class RebasedHttpClient(TwilioHttpClient):
    def __init__(self, base: str, **kwargs):
        super().__init__(**kwargs)
        self.base = base.rstrip("/")
        if self.session is not None:
            self.session.mount(TWILIO_API, _Rebased(self.base))

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API):
            url = self.base + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)
