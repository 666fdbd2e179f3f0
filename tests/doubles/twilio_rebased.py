"""The real twilio library's HTTP client, sending to a local base URL instead of api.twilio.com.

Paths, form fields, auth, timeouts and error parsing stay the library's own; only the host
changes (to the Twilio simulator's HTTP front, or a fault proxy in front of it). Used by the
worker processes the live rig and the fault suite start.
"""
from __future__ import annotations

from twilio.http.http_client import TwilioHttpClient

TWILIO_API = "https://api.twilio.com"


class RebasedHttpClient(TwilioHttpClient):
    def __init__(self, base: str, **kwargs):
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API):
            url = self.base + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)
